"""`python cli.py …` at the repository root does what the installed `verifier` command does."""
from verifier.cli import entry

if __name__ == "__main__":
    entry()
