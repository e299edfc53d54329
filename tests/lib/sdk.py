"""The host SDK (python/valet) for the integration tests. The tests' own
helpers are the module `valet` (tests/lib/valet.py), so the SDK package is
loaded here under the name `valet_sdk`: its imports are all relative, so it
runs the same under either name. The package as users import it (`import
valet`, installed with pip) is exercised by test_sdk_package.py and the
sandbox example, in processes of their own."""
import importlib.util
import os
import sys

import valet as harness

PYTHON_DIR = os.path.join(harness.ROOT, "python")
NAME = "valet_sdk"


def load():
    if NAME in sys.modules:
        return sys.modules[NAME]
    init = os.path.join(PYTHON_DIR, "valet", "__init__.py")
    spec = importlib.util.spec_from_file_location(NAME, init,
                                                  submodule_search_locations=[os.path.dirname(init)])
    mod = importlib.util.module_from_spec(spec)
    sys.modules[NAME] = mod
    spec.loader.exec_module(mod)
    return mod


def maitred(args=(), wrap=()):
    """maitred on a unix socket, no boot jobs, no VmReady."""
    return harness.Maitred(args=["--no-startup-processes", "--vm-ready", "none"] + list(args), wrap=wrap)
