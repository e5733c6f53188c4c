"""`python -m pyoci`: the same entry as the `pyoci` launcher (the code is in `pyoci.entry`, so
that nothing ever imports this module and `-m` does not load it twice)."""

from pyoci.entry import entry

if __name__ == "__main__":
    entry()
