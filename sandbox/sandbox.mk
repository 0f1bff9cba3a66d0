# sandbox/sandbox.mk - the drsandbox part of the build; the top-level Makefile includes it.
# Paths are relative to the repository root, where make runs.
#
#   make sandbox-venv   create .venv with the pinned requirements and make `python -m drsandbox`
#                       importable from it regardless of the working directory (a .pth file)
#   make sandbox-test   run the sandbox's pytest suite
#
# Other makefile code can run the sandbox with $(SANDBOX_PY) -m drsandbox serve ...

# Whether included before or after the including Makefile's first target, this fragment
# never becomes the default goal.
_SANDBOX_SAVED_GOAL := $(.DEFAULT_GOAL)

SANDBOX_PY := $(CURDIR)/.venv/bin/python

.venv/.stamp: sandbox/requirements.txt
	python3 -m venv .venv
	.venv/bin/python -m pip install --disable-pip-version-check --quiet -r sandbox/requirements.txt
	.venv/bin/python -c 'import pathlib, sysconfig; pathlib.Path(sysconfig.get_paths()["purelib"], "drsandbox.pth").write_text("$(CURDIR)/sandbox\n")'
	touch $@

.PHONY: sandbox-venv sandbox-test
sandbox-venv: .venv/.stamp

sandbox-test: .venv/.stamp
	.venv/bin/python -m pytest -q sandbox/tests

.DEFAULT_GOAL := $(_SANDBOX_SAVED_GOAL)
