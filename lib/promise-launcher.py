# Runs one slapos.core plugin promise (<partition>/etc/plugin/<name>.py) the
# way slapos.core 1.24's promise process does, and hands the result to the
# node as JSON. Written for slapos-node (not copied from slapos.core); any
# Python 3 from 3.7.
#
# Run by the node, as the partition user, in its own process group (the node
# kills the whole group at the timeout), with the software release's Python:
#     <python> promise-launcher.py '<json request>'
# The request holds what the reference's launcher knows: path, name,
# partition-folder, log-folder, check-anomaly, allow-bang, promise-timeout,
# master-url, partition-cert, partition-key, partition-id, computer-id,
# slapgrid-version, and `marker`, a random word that starts our own lines.
#
# We never ship nor import slapos.core ourselves: GenericPromise, IPromise and
# whatever else the promise needs come from the plugin's own sys.path (the
# `sys.path[0:0] = [...]` that slapos.cookbook writes at its top), as in the
# reference's runpromises.py.
#
# Output, on stdout (the node merges stderr into it and logs every other line):
#     <marker> cache {"is_tested": ..., ...}   before run(): the reference's cache entry
#     <marker> result {"type": ..., "failed": ..., "date": ..., "message": ...}
# An exception (import error, bad class, constructor) prints its traceback
# and exits 1 without a result line: the node then records the reference's
# "Error: No output returned by the promise".
import importlib
import inspect
import json
import logging
import os
import re
import sys
import time
import traceback

# The script's own folder (lib/ of slapos-node) must not shadow the plugin's modules.
if sys.path and os.path.abspath(sys.path[0] or '.') == os.path.dirname(os.path.abspath(__file__)):
    del sys.path[0]

PARAMETER_NAME = 'extra_config_dict'


class ResultQueue(object):
    """The `queue` of the promise's configuration: GenericPromise puts its PromiseQueueResult here."""

    def __init__(self):
        self.items = []

    def put_nowait(self, item):
        self.items.append(item)

    def put(self, item, block=True, timeout=None):
        self.items.append(item)

    def empty(self):
        return not self.items


def emit(out, marker, kind, data):
    out.write('%s %s %s\n' % (marker, kind, json.dumps(data)))
    out.flush()


def remove_stale_compiled(folder):
    """Stale .pyc/.pyo without their .py are deleted first, as the reference does."""
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        if name.endswith(('.pyc', '.pyo')) and not os.path.exists(os.path.join(folder, name[:-1])):
            try:
                os.unlink(os.path.join(folder, name))
            except OSError:
                pass


def create_init_file(folder):
    init_file = os.path.join(folder, '__init__.py')
    if not os.path.exists(init_file):
        with open(init_file, 'w') as f:
            f.write('')
        os.chmod(init_file, 0o644)
    if sys.path[0:1] != [folder]:
        sys.path[0:0] = [folder]


def load_promise_class(name, argument_dict):
    if re.match(r'[a-zA-Z_]', name) is None:
        raise ValueError('Promise plugin name %r is not valid' % name)
    module = importlib.import_module(os.path.splitext(name)[0])
    if not hasattr(module, 'RunPromise'):
        raise AttributeError('Class RunPromise not found in promise%s' % name)
    # Found through the plugin's sys.path, after its import (which may have purged and re-imported slapos.*).
    from slapos.grid.promise import interface
    from slapos.grid.promise.generic import GenericPromise
    if not interface.IPromise.implementedBy(module.RunPromise):
        raise RuntimeError("RunPromise class in %s must implement 'IPromise'"
                           ' interface. @implementer(interface.IPromise) is missing ?' % name)
    if not issubclass(module.RunPromise, GenericPromise):
        raise RuntimeError('RunPromise class is not a subclass of GenericPromise class.')
    if hasattr(module, PARAMETER_NAME):
        extra = getattr(module, PARAMETER_NAME)
        if not isinstance(extra, dict):
            raise ValueError('Extra parameter is not a dict')
        for key in extra:
            if key in argument_dict:
                raise ValueError('Extra parameter name %r cannot be used.\n%s' % (key, extra))
            argument_dict[key] = extra[key]
    return module.RunPromise


def cache_entry(promise_class, instance, check_anomaly):
    py_file = '%s.py' % os.path.splitext(inspect.getfile(promise_class))[0]
    is_tested = not hasattr(instance, 'isTested') or instance.isTested()
    is_anomaly_detected = not hasattr(instance, 'isAnomalyDetected') or instance.isAnomalyDetected()
    started = (is_anomaly_detected and check_anomaly) or (is_tested and not check_anomaly)
    periodicity = instance.getPeriodicity()
    timestamp = time.time()
    return {
        'is_tested': bool(is_tested),
        'is_anomaly_detected': bool(is_anomaly_detected),
        'periodicity': periodicity,
        'next_run_after': timestamp + periodicity * 60.0 if started else timestamp,
        'timestamp': timestamp,
        'module_file': py_file,
        'module_file_mtime': os.stat(py_file).st_mtime,
    }


def serialize(queue_item):
    item = getattr(queue_item, 'item', None)
    if item is None:
        return {'type': 'Empty Result', 'failed': False, 'date': None, 'message': None}
    date = getattr(item, 'date', None)
    message = item.message
    if message is not None and len(str(message)) > 5000:  # GenericPromise's own limit, in case a result skipped it
        message = '...' + str(message)[-5000:]
    return {
        'type': item.type(),
        'failed': bool(item.hasFailed()),
        'date': date.strftime('%Y-%m-%dT%H:%M:%S+0000') if date is not None else None,
        'message': message if message is None else str(message),
    }


def main(argv):
    request = json.loads(argv[1])
    marker = request['marker']
    out = os.fdopen(os.dup(1), 'w')
    # The promise's log records also reach the node's log through our stdout (the reference's path a).
    logging.basicConfig(stream=sys.stdout, level=logging.INFO,
                        format='%(asctime)s - %(name)s - %(levelname)s - %(message)s')
    partition = request['partition-folder']
    path = request['path']
    name = request['name']
    check_anomaly = bool(request.get('check-anomaly'))
    os.chdir(partition)
    queue = ResultQueue()
    # The reference's base config (PromiseLauncher.run): every option is `value or None`.
    config = {
        'path': path,
        'name': name,
        'log-folder': request.get('log-folder') or None,
        'partition-folder': partition,
        'debug': request.get('debug') or None,
        'promise-timeout': request.get('promise-timeout') or None,
        'master-url': request.get('master-url') or None,
        'partition-cert': request.get('partition-cert') or None,
        'partition-key': request.get('partition-key') or None,
        'partition-id': request.get('partition-id') or None,
        'computer-id': request.get('computer-id') or None,
        'queue': queue,
        'slapgrid-version': request.get('slapgrid-version') or '1.24.0',
    }
    try:
        folder = os.path.dirname(path)
        remove_stale_compiled(folder)
        create_init_file(folder)
        promise_class = load_promise_class(name, config)
        instance = promise_class(config)
        emit(out, marker, 'cache', cache_entry(promise_class, instance, check_anomaly))
        instance.run(check_anomaly, bool(request.get('allow-bang')))
    except Exception:
        sys.stdout.flush()
        sys.stderr.write(traceback.format_exc())
        sys.stderr.flush()
        return 1
    sys.stdout.flush()
    if not queue.items:
        return 3
    emit(out, marker, 'result', serialize(queue.items[-1]))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
