"""Stand-in for ansible-test's pip bootstrap script.

ansible-test creates empty virtual environments and bootstraps pip into them with a script it
downloads from a host this machine cannot reach. tools/setup-host.sh puts this file where
ansible-test caches that script. It does the same job from what is already here: it installs
the pip bundled with the running Python (ensurepip), then runs ``pip install ARGS`` with the
arguments ansible-test passes (its pinned pip, setuptools and wheel), which come from PyPI.
"""

import ensurepip
import os
import subprocess
import sys

# get-pip.py's own flags; without them it would also install setuptools and wheel, which
# this stand-in never does.
GET_PIP_ONLY_FLAGS = {"--no-setuptools", "--no-wheel"}

environment = dict(os.environ)
arguments = [argument for argument in sys.argv[1:] if argument not in GET_PIP_ONLY_FLAGS]
ensurepip.bootstrap(upgrade=True)
# ensurepip points PIP_CONFIG_FILE at /dev/null in this process, which would hide the host's
# pip settings (index, CA bundle): run pip in a fresh interpreter with the original environment.
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install", *arguments], env=environment))
