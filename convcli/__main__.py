"""``python -m convcli``: the same command line as the ``convcli`` script."""

from convcli.cli import main

if __name__ == "__main__":
    main()
