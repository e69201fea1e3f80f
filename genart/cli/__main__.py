"""`python -m genart.cli ...` runs the `genart` command."""

from genart.cli import main

if __name__ == "__main__":
    main()
