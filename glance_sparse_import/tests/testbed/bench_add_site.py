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

"""Time ``glance-sparse-import add-site`` as the bench times an import.

The command runs as an operator runs it on the glance-api host: the API's
configuration files, its Ceph clusters, the API reached without Keystone.
"""

import os
import subprocess
import time

from glance_sparse_import.tests.testbed import bench
from glance_sparse_import.tests.testbed import procs


def add_site_command(api, image_id, stores):
    """The ``add-site`` command line for ``image_id`` and ``stores``."""
    return ([procs.bin_path('glance-sparse-import'), 'add-site'] +
            api.config_args() +
            ['--os-auth-type', 'none', '--os-endpoint', api.url, '--quiet',
             image_id, '--stores', ','.join(stores)])


def timed_add_site(api, clusters, image_id, stores, timeout=1800):
    """Add ``stores`` to an active image with ``add-site``; time it.

    The clock runs from the start of the command to its exit, connecting
    to Glance and to every cluster included. ``others_cpu`` is the CPU the
    rest of the machine used meanwhile, in cores: every process but the
    command and the clusters' daemons.

    :returns: a ``bench.ImportResult`` (no worker memory: no Glance worker
        takes part)
    :raises BenchError: the command failed
    """
    bench.wait_tasks_ended(api, image_id)
    result = bench.ImportResult(image_id, stores)
    result.stage_seconds = 0.0
    os.sync()
    env = {k: v for k, v in os.environ.items() if not k.startswith('OS_')}
    daemons = [procs.read_pid(c.pid_file(d)) for c in clusters.values()
               for d in ('mon.a', 'osd.0')]
    busy_before = bench.machine_busy_ticks()
    own_before = _ticks(daemons) + _children_ticks()
    began = time.monotonic()
    proc = subprocess.Popen(add_site_command(api, image_id, stores),
                            env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise bench.BenchError('add-site of %s timed out after %d s'
                               % (image_id, timeout))
    result.seconds = time.monotonic() - began
    if proc.returncode != 0:
        raise bench.BenchError('add-site of %s to %s failed (%d): %s%s' % (
            image_id, ','.join(stores), proc.returncode, out, err[-2000:]))
    # The command's own CPU is in this process's children's ticks once
    # it has been waited for.
    own = _ticks(daemons) + _children_ticks() - own_before
    busy = bench.machine_busy_ticks() - busy_before
    hz = os.sysconf('SC_CLK_TCK')
    result.others_cpu = max(busy - own, 0) / hz / max(result.seconds, 1e-6)
    status, image = api.request('GET', '/v2/images/%s' % image_id)
    if status != 200:
        raise bench.BenchError('GET image %s: %s' % (image_id, status))
    result.image = image
    for store in stores:
        result.rbd_used[store] = clusters[store].rbd_used_bytes(
            image_id, snap='snap')
    result.summary = out.strip()
    return result


def _children_ticks():
    """CPU ticks of this process's children that it has waited for."""
    times = os.times()
    return int((times.children_user + times.children_system) *
               os.sysconf('SC_CLK_TCK'))


def _ticks(pids):
    total = 0
    for pid in pids:
        stat = bench.read_proc_stat(pid) if pid else None
        if stat is not None:
            total += stat.cpu
    return total
