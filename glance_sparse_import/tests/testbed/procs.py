#    Licensed under the Apache License, Version 2.0 (the "License"); you may
#    not use this file except in compliance with the License. You may obtain
#    a copy of the License at
#
#         http://www.apache.org/licenses/LICENSE-2.0
#
#    Unless required by applicable law or agreed to in writing, software
#    distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
#    WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
#    License for the specific language governing permissions and limitations
#    under the License.

"""Process, port and polling helpers shared by the test bed."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time

from glance_sparse_import.tests.testbed import programs


class CommandError(Exception):
    """A command exited non-zero or timed out."""


def run(cmd, timeout=60, env=None, input=None):
    """Run ``cmd``; return stdout as text.

    Raises CommandError when it exits non-zero, times out, or is not
    installed (naming the Debian package to install).
    """
    try:
        res = subprocess.run(cmd, stdin=subprocess.DEVNULL if input is None
                             else None, input=input, capture_output=True,
                             text=True, timeout=timeout, env=env)
    except FileNotFoundError as e:
        if e.filename != cmd[0]:
            raise
        raise CommandError(programs.missing_message(cmd[0]))
    except subprocess.TimeoutExpired as e:
        raise CommandError('%s timed out after %ss: %s' % (
            ' '.join(cmd), timeout, e.stderr or ''))
    if res.returncode != 0:
        # Crashing daemons print pages of backtrace; the end tells enough.
        raise CommandError('%s exited %d: %s' % (
            ' '.join(cmd), res.returncode,
            (res.stdout + res.stderr)[-2000:]))
    return res.stdout


def bin_path(name):
    """Path of a console script installed next to the running interpreter."""
    return os.path.join(os.path.dirname(sys.executable), name)


def _bindable(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(('127.0.0.1', port))
        except OSError:
            return False
    return True


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def free_port_pair():
    """A port P such that P and P + 1 are both free."""
    for _ in range(100):
        port = free_port()
        if port < 65535 and _bindable(port + 1):
            return port
    raise RuntimeError('no free port pair found')


def wait_until(predicate, timeout, message, interval=0.2, abort=()):
    """Poll ``predicate`` until it returns true; raise TimeoutError.

    Exceptions from ``predicate`` count as "not yet", except instances of
    ``abort``, which propagate at once.
    """
    deadline = time.monotonic() + timeout
    last_error = None
    while True:
        try:
            if predicate():
                return
        except abort:
            raise
        except Exception as e:
            last_error = e
        if time.monotonic() > deadline:
            if last_error is not None:
                message = '%s (last error: %s)' % (message, last_error)
            raise TimeoutError(message)
        time.sleep(interval)


def read_pid(path):
    try:
        with open(path) as f:
            return int(f.read().strip() or 0) or None
    except (OSError, ValueError):
        return None


def pid_alive(pid, name=None):
    """True while ``pid`` runs (zombies count as gone).

    ``name``, when given, must appear in the command line, so a recycled
    pid is never taken for our process.
    """
    try:
        with open('/proc/%d/stat' % pid) as f:
            state = f.read().rsplit(')', 1)[1].split()[0]
        with open('/proc/%d/cmdline' % pid, 'rb') as f:
            cmdline = f.read().decode(errors='replace')
    except (OSError, IndexError):
        return False
    if state in ('Z', 'X'):
        return False
    return name is None or name in cmdline


def kill_pid(pid, name=None, sig=signal.SIGTERM, timeout=60):
    """Send ``sig`` to ``pid`` and wait for it to exit; SIGKILL at timeout."""
    if not pid or not pid_alive(pid, name):
        return
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while pid_alive(pid, name):
        if time.monotonic() > deadline:
            if sig == signal.SIGKILL:
                raise RuntimeError('pid %d survived SIGKILL' % pid)
            kill_pid(pid, name, signal.SIGKILL, 10)
            return
        time.sleep(0.05)


def rmtree(path):
    shutil.rmtree(path, ignore_errors=True)
