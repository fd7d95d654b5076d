#!/bin/bash
# The two test sets, timed on an idle machine (the README's commands).
cd "$(dirname "$0")/../../.."
( time pytest -q tests ) 2>&1 | tail -6 > docs/results/test_suite/default.txt
( time pytest -q -m slow tests ) 2>&1 | tail -6 > docs/results/test_suite/slow.txt
