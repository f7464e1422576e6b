"""How a run ends: the statuses summary.json records and main.py's exit
codes (sweep.py and report.py read both)."""

# summary.json's "status" (a summary without one predates it: finished).
FINISHED = 'finished'
DIVERGED = 'diverged'  # Its loss became non-finite.
INCOMPLETE = 'incomplete'  # A replica stopped because another one diverged.

# main.py's exit codes.
EXIT_OK = 0  # Finished (now or before).
EXIT_ERROR = 1  # Bad input or a failure, with a one-line `error: ...`;
# nothing of the run is lost.
EXIT_DIVERGED = 3  # The loss became non-finite; the last finite checkpoint is
# kept and summary.json says "status": "diverged".
EXIT_STOPPED = 75  # Stopped by SIGTERM, SIGINT, SIGUSR1 or SIGUSR2 after
# saving a checkpoint of the current step; the same command resumes the run exactly
# (75 is EX_TEMPFAIL of sysexits.h: "try again later").
