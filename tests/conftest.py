import os

import matplotlib

matplotlib.use("Agg")
os.environ.setdefault("PROBSPACE_EXAMPLES_FAST", "1")
