"""`python -m seq2text.cli ...`: the `seq2text` command."""

import sys

from seq2text.cli import main

if __name__ == "__main__":
    sys.exit(main())
