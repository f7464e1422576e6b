"""Every config key, with its default. Other configs start from this one.

Override any key from the command line, e.g.
  python main.py --workdir=/tmp/run --config=configs/default.py \
      --config.optimizer=sam --config.rho=0.1 --config.num_neurons='(1024,1024)'
"""

from collections.abc import Mapping
import json
from typing import Any

import ml_collections
from ml_collections import config_dict

import sam

# Groups of keys, named here so that they cannot drift from the keys above
# (tests/test_layering.py checks that each names real keys).
# Keys that never change the trajectory (the parameters after each step):
# evaluation, logging, checkpointing and where data is read from. A resumed
# run may change them (rundir.check_workdir).
TRAJECTORY_NEUTRAL_KEYS = (
    'eval_batch_size',
    'checkpoints_to_keep',
    'checkpoint_every_steps',
    'steps_per_dispatch',
    'data_dir',
    'manual_dir',
    'download',
    'analysis_every_epochs',
    'analysis',
    'compilation_cache_dir',
    'cpu_threads',
    'log_spaced_evals',
)
# Keys that make a run one seed of a setting: report.py averages runs that
# differ only in these and the keys above.
SEED_KEYS = ('seed', 'num_replicas', 'replica_rho', 'replica_seeds')
# Keys SGD ignores: rho and every sam_* key (the keys of SAM's variants are
# named so; tests/test_sam.py checks it). report.py puts SGD runs in one
# setting whatever their values, and sweeps train them once.
SAM_PREFIX = 'sam_'


def is_sam_only(key: str) -> bool:
  return key == 'rho' or key.startswith(SAM_PREFIX)


def unread_variant_keys(variant: str) -> frozenset[str]:
  """The keys other SAM variants declare that `variant` does not read (RWP's
  sigma for SAM): a SAM run's value of them changes nothing. Empty for a
  name no variant has."""
  if variant not in sam.VARIANTS:
    return frozenset()
  declared = {key for other in sam.VARIANTS.values() for key in other.keys}
  return frozenset(declared - set(sam.VARIANTS[variant].keys))


# The width of each model family (the x axis of the paper's Figure 1).
WIDTH_KEYS = (
    'num_neurons',
    'num_filters',
    'width_factor',
    'hidden_size',
    'rl_width',
)


def replica_seeds_and_rhos(
    config: Mapping[str, Any],
) -> list[tuple[int, float]]:
  """(seed, rho) of each replica of a run of config['num_replicas']
  replicas (see replica_seeds below)."""
  rhos = tuple(config.get('replica_rho') or ())
  if config.get('replica_seeds'):
    return [
        (config['seed'] + s, rho)
        for s in range(config['replica_seeds'])
        for rho in rhos
    ]
  rhos = rhos or (config['rho'],) * config.get('num_replicas', 1)
  return [(config['seed'] + r, rho) for r, rho in enumerate(rhos)]


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()

  # --- Data ---
  # TFDS name (mnist, fashion_mnist, cifar10, cifar100, imagenet2012; the
  # text sets imdb_reviews and glue/sst2; the graphs of ogbg_molpcba) or
  # mnist1d (generated locally by the `mnist1d` package); the regression
  # sets sparse_regression, maennel_1d and teacher_regression are generated
  # in-process (input_pipeline/synthetic.py); read from the user's files
  # in data_dir as released: ud_en_ewt (CoNLL-U), mitbih (CSV) and tu/NAME
  # (any TUDataset graph set). docs/datasets.md says where to get each.
  config.dataset = 'fashion_mnist'
  # TFDS data directory, or the directory of a dataset read from files;
  # unset (None) uses TFDS's default, which honours TFDS_DATA_DIR. A
  # string-typed placeholder, so that --config.data_dir=DIR works on the
  # command line.
  config.data_dir = config_dict.placeholder(str)
  # Download with TFDS when the data is missing; False fails fast offline.
  config.download = True
  # Where TFDS finds manually downloaded archives (ImageNet); None = TFDS's
  # default, <data_dir>/downloads/manual.
  config.manual_dir = config_dict.placeholder(str)
  # Train on the first N training examples only; 0 = the whole split. For
  # sparse_regression and teacher_regression: the N examples generated (0 =
  # 20 and 1,000).
  config.num_train_examples = 0
  # Passes over the training examples that make one epoch (the period of
  # evaluation, records and checkpoints): a full-batch run of 10,000 steps
  # with epoch_passes=100 is evaluated every 100 steps, and the steps
  # between run on device in one dispatch. In-memory datasets only.
  config.epoch_passes = 1
  # Also evaluate at this many steps of the run, step 0 and the rest spaced
  # evenly on a log scale, inside the dispatches (step_evals.py): loss
  # curves of long full-batch runs, logged as steps/{split}/{metric} and
  # summary.json's step_evals; 0 = only at the ends of epochs. In-memory
  # datasets only.
  config.log_spaced_evals = 0
  # Random crops (zero-padded by 4 pixels) and horizontal flips while
  # training; for ImageNet, Inception-style random-resized crops and flips.
  config.augment = False
  # Side of the square ImageNet crops (other datasets keep their size).
  config.image_size = 224
  # Fraction of training labels replaced, in [0, 1); the test set is never
  # touched. The noisy set depends only on the seed (same for SGD and SAM).
  config.label_noise = 0.0
  # symmetric (uniform over the other classes) or asymmetric (class c
  # becomes c + 1 mod num_classes).
  config.label_noise_type = 'symmetric'
  # Fraction of the training split held out for validation (the same
  # examples in every run of the dataset, with their true labels), evaluated
  # every epoch and logged as validation/* beside test/*: tune on it, not on
  # the test set. 0 = none. In-memory datasets only.
  config.validation_fraction = 0.0
  # Text datasets (input_pipeline/text.py): words in the vocabulary,
  # padding and unknown-word ids included; the vocabulary holds the most
  # frequent words of the training examples the run trains on.
  config.vocab_size = 20_000
  # Tokens per text: longer texts are truncated, shorter ones padded.
  config.max_length = 256
  # ogbg_molpcba (input_pipeline/graphs.py): every graph is padded to
  # max_nodes atoms and max_edges directed edges (a bond is two), so that
  # nothing recompiles; a larger graph is refused with the sizes that fit.
  # Memory and compute grow with them: keep them near the largest graph.
  # (A TU set's graphs are padded to its largest graph's sizes.)
  config.max_nodes = 64
  config.max_edges = 128
  # TU graph sets (tu/NAME, input_pipeline/tudataset.py), which have no
  # test split: the fraction of the graphs that is, drawn with a fixed seed
  # (the same graphs for every run).
  config.test_fraction = 0.1
  # Generated regression sets (input_pipeline/synthetic.py): the inputs'
  # dimension d, the nonzero entries k of sparse_regression's theta*, the
  # teacher's hidden units (teacher_regression), the standard deviation of
  # the noise added to the training targets, the test examples, and the
  # seed of the draw (the same examples for every run seed; -1 = the run's
  # seed, a new draw per seed).
  config.input_dim = 30
  config.num_nonzero = 3
  config.teacher_width = 10
  config.target_noise = 0.0
  config.num_test_examples = 1000
  config.data_seed = 0

  # --- Model ---
  # mlp; CIFAR-style resnet18, resnet34, preact_resnet18; WideResNets wrn16,
  # wrn28; ImageNet-style resnet50; the Vision Transformer vit; for text,
  # text_transformer; for graphs, gcn; for regression, diagonal_linear
  # (and the mlp).
  config.model = 'mlp'
  # Hidden-layer widths of the MLP: the width knob for MLPs.
  config.num_neurons = (300, 100)
  # The MLP's initialization: default (Flax's: LeCun normal kernels, zero
  # biases) or maennel, that of both papers' one-hidden-layer ReLU code
  # (after Blanc et al.): hidden kernels +-2.5 with random signs, hidden
  # biases N(0, 2.5^2), output kernel N(0, 4^2), no output bias, each times
  # init_scale.
  config.mlp_init = 'default'
  # The scale of the initialization: of mlp_init=maennel, and alpha of the
  # diagonal linear network (u = alpha, v = 0).
  config.init_scale = 1.0
  # The dtype of the forward and backward passes: float32, or bfloat16
  # (mixed precision for image and feature inputs: parameters, optimizer
  # state, SAM's perturbations and every norm stay float32; the loss is
  # computed from float32 logits). Analysis always measures in float32.
  config.dtype = 'float32'
  # Base width of the ResNets (stages use x1, x2, x4, x8): their width knob.
  config.num_filters = 64
  # Width factor k of the WideResNets (stages 16k, 32k, 64k): their knob.
  config.width_factor = 10
  # Normalization in the ResNets: batch, group (32 groups; independent of
  # the batch, as in the m-sharpness studies) or none.
  config.norm = 'batch'
  # Transformers (model=vit, models/vit.py; model=text_transformer,
  # models/text_transformer.py) and the graph network (model=gcn,
  # models/gcn.py). Their width knob: the features of every token or node.
  # Heads and MLP follow ViT's ratios unless set.
  config.hidden_size = 192
  # Encoder blocks (Transformers) or graph convolutions (gcn).
  config.depth = 12
  # Square patches of patch_size pixels; must divide the image's sides.
  config.patch_size = 16
  # Attention heads; 0 = hidden_size / 64, at least 1 (ViT-Ti/S/B: 3/6/12).
  config.num_heads = 0
  # The MLP of each block is mlp_ratio x hidden_size wide.
  config.mlp_ratio = 4
  # What feeds the classifier: cls (a class token) or mean (of the tokens).
  config.pooling = 'cls'

  # --- Optimization ---
  # sgd (plain training with the base optimizer) or sam (SAM around it).
  config.optimizer = 'sgd'
  # sgd (heavy-ball `momentum`), nesterov, adam (coupled weight decay) or
  # adamw (decoupled weight decay).
  config.base_optimizer = 'sgd'
  # Peak learning rate.
  config.learning_rate = 0.1
  # Momentum of sgd and nesterov (0 = plain SGD).
  config.momentum = 0.9
  # Adam(W)'s moment decay rates and epsilon.
  config.adam_b1 = 0.9
  config.adam_b2 = 0.999
  config.adam_eps = 1e-8
  # Weight decay. Coupled for sgd, nesterov and adam: wd * w is added to the
  # gradient of every parameter (an L2 penalty wd/2 ||w||^2 in the loss);
  # decoupled for adamw.
  config.weight_decay = 1e-4
  # Global batch size, split evenly over all devices.
  config.batch_size = 128
  # Length of training.
  config.num_epochs = 100
  # step (multiply by lr_decay_factor at each boundary), cosine (to 0),
  # linear (to 0) or constant.
  config.lr_schedule = 'step'
  # Epochs of linear warmup from 0 (may be fractional; 0 = none).
  config.warmup_epochs = 0.0
  # Step-schedule boundaries, as fractions of the total number of steps.
  config.lr_boundaries = (0.25, 0.5, 0.75)
  # Step-schedule factor applied at each boundary.
  config.lr_decay_factor = 0.1

  # --- SAM ---
  # The sharpness-aware method (optimizer=sam): a module of the sam package,
  # e.g. 'sam' (Foret et al., 2021, with its multi-step and adaptive
  # ascents) or 'usam' (the unnormalized ascent e = rho * grad L,
  # Andriushchenko & Flammarion, 2022); docs/sam_variants.md lists them all.
  config.sam_variant = 'sam'
  # Radius of the ball of the ascent step (optimizer=sam).
  config.rho = 0.05
  # How rho follows the training: 'constant', or 'learning_rate', rho_t =
  # sam_rho_min + (rho - sam_rho_min) * lr_t / learning_rate (GSAM's
  # schedule, Zhuang et al., 2022: rho decays with the learning rate).
  config.sam_rho_schedule = 'constant'
  config.sam_rho_min = 0.0
  # The variant on every k-th step, the base optimizer's plain gradient in
  # between (1 = every step): a cost knob, (k + 1) / k passes per step
  # instead of 2 for SAM. With several replicas, or a convolutional model
  # on CPU, both branches run (docs/sam_variants.md, Cost).
  config.sam_every_steps = 1
  # m of m-sharpness: examples per ascent. 0 = each device's batch, as in the
  # original SAM code (the result then depends on the device count); m > 0
  # splits every device batch into micro-batches of m examples, each with
  # its own ascent, and averages their descent gradients (must divide the
  # per-device batch; independent of the device count).
  config.sam_m = 0
  # BatchNorm running statistics from the clean (as in Shin et al.'s and
  # Foret et al.'s code) or the perturbed forward pass.
  config.sam_batchnorm_stats = 'clean'
  # Train with the base optimizer alone before this epoch, with SAM after.
  config.sam_start_epoch = 0
  # The variants' own keys (sam_*) with their papers' defaults, and
  # sam_weight_decay_in_ascent, which several read: each is documented in
  # the module that declares it (sam/<variant>.py, sam/__init__.py).
  config.update(sam.defaults())

  # --- Sparsity (pruning at initialization) ---
  # random (per layer), magnitude (global |w|) or snip (global |w dL/dw| on
  # the first training batch).
  config.pruner = 'random'
  # Fraction of kernel weights pruned, in [0, 1); 0 keeps the dense network.
  config.sparsity = 0.0

  # --- Reinforcement learning (a config with `environment` set) ---
  # A gymnax environment with discrete actions (CartPole-v1, Acrobot-v1,
  # Breakout-MinAtar, SpaceInvaders-MinAtar, ...); '' trains on `dataset`.
  # The agent is trained with PPO (rl/ppo.py); optimizer=sam puts the SAM
  # variant's ascent on each minibatch's PPO loss. The data, model and
  # sparsity keys are then not read (and refused if set).
  config.environment = ''
  # The actor-critic: mlp (two tanh towers of widths num_neurons) for
  # vector observations; nature_cnn (Mnih et al., 2015) for frames.
  config.rl_network = 'mlp'
  # Scales every layer of the Nature CNN (Shin et al.'s Atari grid: 0.5, 1,
  # 1.5, 2): the width knob of frame-based agents.
  config.rl_width = 1.0
  # Environments stepped side by side, and steps of each per rollout.
  config.rl_num_envs = 4
  config.rl_rollout_steps = 128
  # Environment steps (over all environments) in an epoch: a multiple of a
  # rollout. Returns are logged, the agent evaluated and the run
  # checkpointed once per epoch.
  config.rl_env_steps_per_epoch = 16_384
  # Evaluation episodes after each epoch: the greedy policy from the same
  # fixed environment seeds for every run (so runs pair episode by episode).
  config.rl_eval_episodes = 16
  # PPO (Schulman et al., 2017), defaults of PureJaxRL's and CleanRL's:
  # passes over each rollout, minibatches per pass, discount, GAE lambda,
  # clip range (ratio and value), value and entropy coefficients, and the
  # global-norm clip of the gradient the optimizer receives.
  config.ppo_epochs = 4
  config.ppo_minibatches = 4
  config.ppo_gamma = 0.99
  config.ppo_gae_lambda = 0.95
  config.ppo_clip = 0.2
  config.ppo_value_coef = 0.5
  config.ppo_entropy_coef = 0.01
  config.ppo_max_grad_norm = 0.5

  # --- Run ---
  # Seeds initialization, pruning, data order, augmentation and label noise.
  config.seed = 0
  # Independent models trained side by side in one program (vmapped), with
  # seeds seed, seed + 1, ...: each ends as the separate run with its seed
  # would, writes its own TensorBoard directory and summary.json under
  # <workdir>/replica_<r>/. Faster than sequential runs for small models
  # (1.15x to 1.5x for 8 replicas of a (75, 25) MLP on a 2-core CPU).
  config.num_replicas = 1
  # Optional rho of each replica (length num_replicas); () = rho for all.
  config.replica_rho = ()
  # 0: replica r has seed seed + r (and rho replica_rho[r]). S > 0: the
  # replicas are S seeds x the values of replica_rho (num_replicas = S x
  # len(replica_rho)); replica s * len(replica_rho) + j has seed seed + s
  # and rho replica_rho[j], so every rho pairs with the SGD runs of seeds
  # seed, ..., seed + S - 1 (report.py pairs by seed).
  config.replica_seeds = 0
  # Training steps run on device per dispatch from Python (never crosses an
  # epoch boundary); larger values hide more per-dispatch overhead.
  config.steps_per_dispatch = 100
  # Examples per evaluation batch (over all devices of a process).
  config.eval_batch_size = 1000
  # Number of newest checkpoints kept in <workdir>/checkpoints.
  config.checkpoints_to_keep = 3
  # Also checkpoint every N training steps inside an epoch, so that a
  # kill -9 loses at most N steps (for long epochs, e.g. ImageNet); 0 = at
  # the end of each epoch only. Resuming from any checkpoint continues
  # exactly as if the run had never stopped.
  config.checkpoint_every_steps = 0
  # JAX's persistent compilation cache (see runtime/compilation_cache.py): a
  # directory, 'off', or unset (None) for $JAX_COMPILATION_CACHE_DIR or else
  # ~/.cache/sam-overparam/jax-compilation. A second run of a config, or a
  # sweep's next run, then compiles nothing the first one compiled.
  config.compilation_cache_dir = config_dict.placeholder(str)
  # Threads of XLA:CPU's pool (0 = XLA's default: $PJRT_NPROC if set, else
  # one per core of the process's CPU affinity). Small agents train faster
  # on one (configs/cartpole_ppo.py): with microsecond operations, handing
  # them between threads costs more than it gains. main.py applies it
  # before JAX starts (through $PJRT_NPROC, which XLA's GPU client may also
  # read for its host threads; unmeasured, 0 leaves them as they are).
  config.cpu_threads = 0
  # Another run's workdir: start from its final weights, BatchNorm statistics
  # and pruning mask, with a fresh optimizer ('' = random initialization).
  config.init_from = ''

  # --- Analysis (analyze.py; during training if analysis_every_epochs) ---
  # Log the top Hessian eigenvalue, its trace and the one-step sharpness to
  # TensorBoard every N epochs while training; 0 = off.
  config.analysis_every_epochs = 0
  # The analysis settings: those of training's measurements, and the base of
  # analyze.py's (its --config.analysis.KEY=VALUE override them; a run's
  # config.json keeps the block it trained with).
  analysis = ml_collections.ConfigDict()
  # What analyze.py measures besides loss and accuracy: 'hessian' (top
  # eigenvalues, trace, spectral density and moments), 'sharpness' (one-step,
  # worst-case, adaptive, average-case, m-), 'landscape' (1D and 2D) and,
  # for models of at most 1,024 parameters, 'stability' (the sharpness and
  # non-uniformity of the exact per-example Hessians, analysis/stability.py);
  # for a diagonal_linear network on sparse_regression, 'sparse_recovery'
  # (||beta||_1 and ||beta - theta*||_2, analysis/recovery.py); for a
  # network of one real input on generated data (maennel_1d),
  # 'function_1d' (the learned function, drawn, analysis/function_1d.py).
  # A sweep's Hessian against width needs only ('hessian',).
  analysis.parts = ('hessian', 'sharpness', 'landscape')
  # With analysis_every_epochs: the parts whose TensorBoard scalars training
  # also logs every analysis_every_epochs epochs, besides the Hessian's top
  # eigenvalue and trace and the one-step sharpness (e.g.
  # ('sparse_recovery',) for ||beta||_1 along training, ('stability',)).
  analysis.training_parts = ()
  # Training examples the loss is measured on (a fixed, seeded subset): at
  # most the run's training examples, and a multiple of batch_size.
  analysis.num_examples = 2048
  # Examples per micro-batch (over all devices): bounds activation memory;
  # divides num_examples.
  analysis.batch_size = 1024
  # Seeds the subset, Lanczos start vectors, probes, noise and directions.
  analysis.seed = 0
  # Number of top Hessian eigenvalues reported.
  analysis.top_k = 5
  # Also report the most negative eigenvalue. Lanczos then runs until it
  # has converged too, which can take twice the steps (an MLP: 28 instead
  # of 12).
  analysis.most_negative_eigenvalue = True
  # Lanczos for the extreme eigenvalues stops once the residual bound of
  # each reported eigenvalue (the top_k and the most negative) is below this
  # fraction of the largest |eigenvalue| (0 = always take every step) ...
  analysis.lanczos_tolerance = 1e-3
  # ... or after this many steps (Hessian-vector products).
  analysis.lanczos_iterations = 40
  # Hutchinson's trace estimate draws Rademacher probes (one HVP each) until
  # its standard error is below this fraction of |trace| (after at least 10
  # probes; 0 = every probe) ...
  analysis.trace_tolerance = 0.01
  # ... or this many.
  analysis.hutchinson_probes = 100
  # Probes of stochastic Lanczos quadrature (spectral density, moments);
  # 0 = neither (the top eigenvalues and trace alone take a fraction of the
  # time).
  analysis.slq_probes = 10
  # Lanczos steps per SLQ probe.
  analysis.slq_iterations = 40
  # Spectral moments E[lambda^k] reported, k = 1..num_moments.
  analysis.num_moments = 4
  # Points of the spectral density grid.
  analysis.density_points = 1000
  # Gaussian smoothing of the density, as a fraction of the spectrum's range.
  analysis.density_sigma = 0.01
  # Radius of the L2 ball of worst-case sharpness (and m-sharpness).
  analysis.rho = 0.05
  # Steps of the multi-step ascent (multi-step, adaptive and m-sharpness).
  analysis.ascent_steps = 5
  # Group size of m-sharpness (must divide batch_size / devices); 0 = off.
  analysis.m = 128
  # Radius of adaptive sharpness, in units of T(w) = |w| + adaptive_eta.
  analysis.adaptive_rho = 0.5
  # eta > 0 of adaptive sharpness's scale |w| + eta on kernels (ASAM's).
  analysis.adaptive_eta = 0.01
  # Standard deviation of each weight's noise for average-case sharpness.
  analysis.noise_sigma = 0.01
  # Noise draws for average-case sharpness.
  analysis.noise_samples = 20
  # Points of the 1D landscape along a filter-normalized direction.
  analysis.landscape_points = 41
  # Points per side of the 2D landscape grid.
  analysis.landscape_2d_points = 21
  # Landscapes span [-radius, radius] times each filter-normalized direction.
  analysis.landscape_radius = 1.0
  # Points of the linear interpolation between two runs.
  analysis.interpolation_points = 41
  # Interpolation coefficients t of (1 - t) w_run + t w_other.
  analysis.interpolation_range = (-0.5, 1.5)
  config.analysis = analysis

  return config


def completed(config: dict[str, Any]) -> dict[str, Any]:
  """A config as a run's config.json or summary.json holds it, with the
  keys added since it was written at their defaults (what that run did):
  runs from before a key compare, resume and group as they did."""
  defaults = json.loads(json.dumps(get_config().to_dict()))
  return {**defaults, **config}
