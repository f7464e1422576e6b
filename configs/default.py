"""Every config key, with its default. Other configs start from this one.

Override any key from the command line, e.g.
  python main.py --workdir=/tmp/run --config=configs/default.py \
      --config.optimizer=sam --config.rho=0.1 --config.num_neurons='(1024,1024)'
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()

  # --- Data ---
  # TFDS name (mnist, fashion_mnist, cifar10, cifar100, imagenet2012) or
  # mnist1d (generated locally by the `mnist1d` package).
  config.dataset = 'fashion_mnist'
  # TFDS data directory; None uses TFDS's default, which honours TFDS_DATA_DIR.
  config.data_dir = None
  # Download with TFDS when the data is missing; False fails fast offline.
  config.download = True
  # Where TFDS finds manually downloaded archives (ImageNet); None = TFDS's
  # default, <data_dir>/downloads/manual.
  config.manual_dir = None
  # Train on the first N training examples only; 0 = the whole split.
  config.num_train_examples = 0
  # Random crops (zero-padded by 4 pixels) and horizontal flips while
  # training; for ImageNet, Inception-style random-resized crops and flips.
  config.augment = False
  # Side of the square ImageNet crops (other datasets keep their size).
  config.image_size = 224

  # --- Model ---
  # mlp, resnet18, resnet34 (CIFAR-style) or resnet50 (ImageNet-style).
  config.model = 'mlp'
  # Hidden-layer widths of the MLP: the width knob for MLPs.
  config.num_neurons = (300, 100)
  # Base width of the ResNets (stages use x1, x2, x4, x8): their width knob.
  config.num_filters = 64

  # --- Optimization ---
  # sgd (SGD with momentum) or sam (SAM around the same base optimizer).
  config.optimizer = 'sgd'
  # Peak learning rate.
  config.learning_rate = 0.1
  # Heavy-ball momentum of the base optimizer (0 = plain SGD).
  config.momentum = 0.9
  # Coupled weight decay: wd * w is added to the gradient of every parameter
  # (the same as an L2 penalty wd/2 ||w||^2 in the loss).
  config.weight_decay = 1e-4
  # Global batch size, split evenly over all devices.
  config.batch_size = 128
  # Length of training.
  config.num_epochs = 100
  # step (multiply by lr_decay_factor at each boundary) or constant.
  config.lr_schedule = 'step'
  # Step-schedule boundaries, as fractions of the total number of steps.
  config.lr_boundaries = (0.25, 0.5, 0.75)
  # Step-schedule factor applied at each boundary.
  config.lr_decay_factor = 0.1

  # --- SAM ---
  # Radius of the L2 ball of the ascent step (optimizer=sam).
  config.rho = 0.05
  # Whether the ascent direction includes the weight-decay term
  # (grad L + wd * w), i.e. whether the sharpness is that of the regularized
  # loss. False as in Shin et al.'s code; Foret et al.'s code uses True.
  config.sam_weight_decay_in_ascent = False

  # --- Sparsity (pruning at initialization) ---
  # random (per layer), magnitude (global |w|) or snip (global |w dL/dw| on
  # the first training batch).
  config.pruner = 'random'
  # Fraction of kernel weights pruned, in [0, 1); 0 keeps the dense network.
  config.sparsity = 0.0

  # --- Run ---
  # Seeds initialization, pruning, data order and augmentation.
  config.seed = 0
  # Training steps run on device per dispatch from Python (never crosses an
  # epoch boundary); larger values hide more per-dispatch overhead.
  config.steps_per_dispatch = 100
  # Examples per evaluation batch (over all devices of a process).
  config.eval_batch_size = 1000
  # Number of newest checkpoints kept in <workdir>/checkpoints (one per epoch).
  config.checkpoints_to_keep = 3

  return config
