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
import collections
import collections.abc
import os
import sys

for _name in ('Callable', 'Iterable', 'Mapping', 'MutableMapping', 'MutableSequence',
              'MutableSet', 'Sequence', 'Set'):
    if not hasattr(collections, _name):
        setattr(collections, _name, getattr(collections.abc, _name))

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
