import os
import sys

# the package (repo root) and the test helpers (this folder) import by name
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE), HERE]
