"""``python -m hean``: the same as the ``hean`` script."""

from hean.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
