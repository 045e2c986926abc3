"""Process exit codes of ``hean``: one table for the CLI and the engine entry point.

systemd reads them: a unit with ``RestartPreventExitStatus=2`` does not restart-loop on a
configuration problem, and ``Restart=on-failure`` restarts after a runtime failure (1).
"""

from typing import Final

__all__ = ["EXIT_FAILURE", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE"]

EXIT_OK: Final = 0
EXIT_FAILURE: Final = 1  # runtime failure: the engine crashed or stopped fail-closed
EXIT_USAGE: Final = 2  # bad flags, invalid config, missing credentials, journal in use
EXIT_INTERRUPTED: Final = 130  # 128 + SIGINT, as shells report it
