# The buildout fork server (docs/performance.md, "Fork server"): started once
# per instance pass by the node, as root, it imports zc.buildout through
# buildout-launcher.py (system code only: never a release's code, never a
# partition's file) and forks one child per instance buildout. A no-change
# run's time is nearly all Python importing setuptools and pkg_resources; a
# child starts with all of that done.
#
# Run as: /usr/bin/python3 buildout-server.py SOCKET
#
# Requests come from slapos-buildout-client (native/buildout-client.c), run
# as root by the executor in the run's cgroup, on a SOCK_SEQPACKET socket in a
# directory only root can enter (and the peer must be uid 0: SO_PEERCRED).
# One message: NUL-separated fields (uid, gid, umask, no_new_privs, the
# number of cgroup.procs descriptors, the supplementary groups, buildout's
# arguments, the environment) and the
# descriptors stdin, stdout, stderr, the working directory and the run's
# cgroup.procs files (SCM_RIGHTS). The server answers "pid N", then
# "status S" (the wait status) when the child has ended. A client that goes
# away (killed at partition_timeout) takes its child with it.
#
# The child, before anything of the release is loaded, does what
# slapos-launch does for the plain path: output to the client's descriptors,
# joins the run's cgroup, its own session, the partition user's groups, gid
# and uid (no way back), no new privileges, umask, the working directory,
# every other descriptor closed, the clean environment; then buildout's
# main() with the launcher's sys.argv.
import atexit
import ctypes
import importlib.util
import os
import select
import signal
import socket
import struct
import sys
import traceback

_libc = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG = 1
PR_SET_NO_NEW_PRIVS = 38

HERE = os.path.dirname(os.path.abspath(__file__))
LAUNCHER = os.path.join(HERE, 'buildout-launcher.py')
MAX_MESSAGE = 1 << 20
MAX_FDS = 32


def _die_with_parent():
    # The node ends the pass by closing our stdin; if the node dies instead, so do we.
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() == 1:
        sys.exit(0)


def _load_launcher():
    spec = importlib.util.spec_from_file_location('slapos_buildout_launcher', LAUNCHER)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    # No lib/__pycache__ written as root into the node's install tree (the
    # exec'd launcher, run as a script, never writes one either); what the
    # launcher imports in turn, and the children, keep the interpreter's rule.
    dont_write, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = dont_write
    # The interpreter's directories, listed once for every child of this pass
    # (a child uses the list only for directories it cannot write).
    module.prelist()
    return module


def _parse(message):
    fields = message.split(b'\0')
    if fields and fields[-1] == b'':
        fields.pop()
    position = [0]

    def take():
        if position[0] >= len(fields):
            raise ValueError('truncated request')
        value = fields[position[0]]
        position[0] += 1
        return value

    uid, gid, umask, nnp, cgroups = int(take()), int(take()), int(take(), 8), take() == b'1', int(take())
    groups = [int(take()) for _ in range(int(take()))]
    args = [os.fsdecode(take()) for _ in range(int(take()))]
    env = {}
    for _ in range(int(take())):
        key, sep, value = os.fsdecode(take()).partition('=')
        if sep:
            env[key] = value
    if uid == 0 or gid == 0 or 0 in groups:
        raise ValueError('refusing to run as uid/gid 0')
    return uid, gid, umask, nnp, groups, args, env, cgroups


def _child(launcher, request, fds):
    # Until main(): any failure ends the child with 127 and one line, as slapos-launch.
    try:
        uid, gid, umask, nnp, groups, args, env, _ = request
        for target, fd in enumerate(fds[:3]):
            os.dup2(fd, target)
        for fd in fds[4:]:
            os.write(fd, b'0')  # the run's cgroup(s), before anything else
        os.setsid()
        os.setgroups(groups)
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
        try:
            os.setuid(0)
        except PermissionError:
            pass
        else:
            raise RuntimeError('could regain root after dropping privileges')
        if nnp and _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), 'prctl(PR_SET_NO_NEW_PRIVS)')
        os.umask(umask)
        os.fchdir(fds[3])
        os.closerange(3, os.sysconf('SC_OPEN_MAX'))
        os.environ.clear()
        os.environ.update(env)
        sys.argv = [LAUNCHER] + args
    except BaseException as error:  # noqa: BLE001
        try:
            os.write(2, ('slapos-buildout-server: %s\n' % (error,)).encode())
        finally:
            os._exit(127)
    code = 0
    try:
        sys.exit(launcher._buildout.main())
    except SystemExit as exit:
        if exit.code is None:
            code = 0
        elif isinstance(exit.code, int):
            code = exit.code & 0xff
        else:
            print(exit.code, file=sys.stderr)
            code = 1
    except BaseException:  # noqa: BLE001
        traceback.print_exc()
        code = 1
    # What the interpreter does at exit in the plain path.
    try:
        atexit._run_exitfuncs()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001
                pass
        os._exit(code)


def serve(path):
    _die_with_parent()
    launcher = _load_launcher()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    listener.bind(path)
    os.chmod(path, 0o600)
    listener.listen(64)
    poller = select.poll()
    poller.register(listener, select.POLLIN)
    poller.register(0, select.POLLIN)
    children = {}  # pidfd -> (pid, connection)
    clients = {}  # connection fd -> (pid, connection, pidfd)
    sys.stdout.write('ready\n')
    sys.stdout.flush()
    closing = False
    while not (closing and not children):
        for fd, _ in poller.poll():
            if fd == 0:
                if not os.read(0, 4096):
                    closing = True
                    poller.unregister(0)
                    poller.unregister(listener)
                    listener.close()
            elif fd == listener.fileno() and not closing:
                try:
                    connection, _ = listener.accept()
                except OSError:
                    continue
                started = _start(launcher, connection)
                if started is None:
                    connection.close()
                    continue
                pid, pidfd = started
                children[pidfd] = (pid, connection)
                clients[connection.fileno()] = (pid, connection, pidfd)
                poller.register(pidfd, select.POLLIN)
                poller.register(connection, select.POLLIN)
            elif fd in children:
                pid, connection = children.pop(fd)
                poller.unregister(fd)
                _, status = os.waitpid(pid, 0)
                os.close(fd)
                if clients.pop(connection.fileno(), None) is not None:
                    poller.unregister(connection)
                try:
                    connection.send(b'status %d' % status)
                except OSError:
                    pass
                connection.close()
            elif fd in clients:
                # The client went away (or sent something it should not): its run ends too.
                pid, connection, pidfd = clients.pop(fd)
                poller.unregister(connection)
                for target in (-pid, pid):
                    try:
                        os.kill(target, signal.SIGKILL)
                    except OSError:
                        pass


def _start(launcher, connection):
    uid = struct.unpack('3i', connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize('3i')))[1]
    if uid != 0:
        return None
    try:
        message, fds, flags, _ = socket.recv_fds(connection, MAX_MESSAGE, MAX_FDS)
    except OSError:
        return None
    try:
        try:
            request = _parse(message)
            if flags & (socket.MSG_CTRUNC | socket.MSG_TRUNC) or len(fds) != 4 + request[-1]:
                # A child outside its cgroup or with the server's stdio: never.
                raise ValueError('descriptors missing or truncated request')
        except ValueError as error:
            try:
                connection.send(b'error %s' % str(error).encode())
            except OSError:
                pass
            return None
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            _child(launcher, request, fds)
        pidfd = os.pidfd_open(pid)
        try:
            connection.send(b'pid %d' % pid)
        except OSError:
            pass
        return pid, pidfd
    finally:
        for fd in fds:
            os.close(fd)


if __name__ == '__main__':
    if len(sys.argv) != 2:
        sys.exit('usage: buildout-server.py SOCKET')
    serve(sys.argv[1])
