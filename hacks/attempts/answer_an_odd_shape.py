"""Answers its first forecast request with a forecast nested 100,000 lists deep, for the trusted
harness's parser to crash on (RecursionError) instead of refusing it as malformed."""

import sys

from hacklib import command, honest

if command() == "predict":
    sys.stdin.readline()
    depth = 100_000
    print('{"forecast": ' + "[" * depth + "]" * depth + "}", flush=True)
    sys.stdin.read()
    sys.exit(0)
honest()
