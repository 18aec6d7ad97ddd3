# Starts zc.buildout (Debian 12's python3-zc.buildout 2.13.2) on Python >= 3.10.
#
# Run as: /usr/bin/python3 buildout-launcher.py [buildout arguments...]
#
# Why: zc.buildout 2.13 imports names that Python 3.10 removed from
# `collections` (they live in `collections.abc`), so Debian's /usr/bin/buildout
# dies with "ImportError: cannot import name 'MutableMapping'". We alias them
# back before importing zc.buildout instead of patching system files.
#
# It also adds `${:_profile_base_location_}` (as SlapOS' zc.buildout does):
# in a profile, it stands for the directory (or URL) of the file that
# contains it, so a software release can refer to its own files. For local
# files and file:// URLs it is a filesystem path.
#
# And it takes two shortcuts at start-up, where nearly all of a no-change run's
# time goes (docs/performance.md, "Instance buildouts"): the interpreter's
# own directories are listed once per run, and doctest/pdb load on first use.
import collections
import collections.abc
import importlib.util
import os
import sys


def _lazy(name):
    # Imported by zc.buildout at start-up but used only by its tests
    # (doctest, via zc.buildout.rmtree) or with -D (pdb): loaded on first use.
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        return
    spec.loader = importlib.util.LazyLoader(spec.loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)


for _name in ('doctest', 'pdb'):
    _lazy(_name)

for _name in ('Callable', 'Iterable', 'Mapping', 'MutableMapping', 'MutableSequence',
              'MutableSet', 'Sequence', 'Set'):
    if not hasattr(collections, _name):
        setattr(collections, _name, getattr(collections.abc, _name))

import pkg_resources  # noqa: E402

# zc.buildout makes a pkg_resources.Environment of the interpreter's path
# several times per run (two installers when zc.buildout.easy_install is
# imported, more to load recipes), each one listing and reading the metadata
# of every distribution there again. The interpreter's own directories do not
# change during a run (a partition user cannot write them; a build installs
# into its eggs directory, which is not one of them): list each once. A
# directory this process could write (run as root, by hand) is listed every
# time. Which directories those are is decided per process: a child of the
# fork server (buildout-server.py) decides it as the partition user.
_ABSOLUTE_PATH = tuple(item for item in sys.path[1:] if os.path.isabs(item))
_find_distributions = pkg_resources.find_distributions
_found = {}
_system_path = (None, frozenset())


def _unwritable_path():
    global _system_path
    if _system_path[0] != os.getpid():
        _system_path = (os.getpid(), frozenset(item for item in _ABSOLUTE_PATH if not os.access(item, os.W_OK)))
    return _system_path[1]


def _find_distributions_once(path_item, only=False):
    if path_item not in _unwritable_path():
        return _find_distributions(path_item, only)
    key = (path_item, bool(only))
    if key not in _found:
        _found[key] = tuple(_find_distributions(path_item, only))
    return iter(_found[key])


def prelist():
    """The fork server's: lists the interpreter's directories now, for its children."""
    for item in _ABSOLUTE_PATH:
        for only in (False, True):
            _found[(item, only)] = tuple(_find_distributions(item, only))


pkg_resources.find_distributions = _find_distributions_once

import zc.buildout.buildout as _buildout  # noqa: E402

_MARKER = '${:_profile_base_location_}'
_annotate = _buildout._annotate


def _base_of(filename):
    if filename.startswith('file://'):
        filename = filename[len('file://'):]
    elif _buildout._isurl(filename):
        return filename[:filename.rfind('/')]
    return os.path.dirname(filename)


def _annotate_with_base(data, filename):
    base = _base_of(filename)
    for section in data.values():
        for key, value in list(section.items()):
            if isinstance(value, str) and _MARKER in value:
                section[key] = value.replace(_MARKER, base)
    return _annotate(data, filename)


_buildout._annotate = _annotate_with_base

if __name__ == '__main__':
    sys.exit(_buildout.main())
