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

"""Measurements for the import benchmark (``tools/bench-import``).

- ``hash_floor``: the wall time of md5 and sha512 over V bytes of zeros,
  each in its own thread, side by side; no import can go active faster,
  since Glance's checksums cover every byte of the virtual disk.
- ``ProcessSampler``: RSS of the uWSGI workers and of their children (qemu)
  sampled from /proc, and the CPU the rest of the machine used meanwhile.
- ``timed_import``: one image staged with the real ``glance`` CLI, then
  ``POST /v2/images/<id>/import`` timed until the image is ``active``.
- ``timed_copy``: ``copy-image`` of an active image to more stores (the
  stock path: Glance runs no import plugin for it), timed the same way.
- ``parse_import_summary``: the plugin's INFO summary line from the log.
"""

import collections
import hashlib
import json
import os
import re
import threading
import time

from glance_sparse_import.tests.testbed import cli as cli_bed
from glance_sparse_import.tests.testbed import procs

KiB = 1024
MiB = 1024 ** 2
GiB = 1024 ** 3

_UNITS = {'': 1, 'B': 1, 'K': KiB, 'M': MiB, 'G': GiB, 'T': 1024 ** 4}
_PAGE_SIZE = os.sysconf('SC_PAGE_SIZE')
_CLK_TCK = os.sysconf('SC_CLK_TCK')


class BenchError(Exception):
    """An import did not go active, or a measurement failed."""


def parse_size(text):
    """Bytes from ``'8G'``, ``'750M'``, ``'1.5GiB'`` or ``'4096'``.

    Suffixes are binary (K = 1024), as qemu-img and truncate read them.
    """
    match = re.fullmatch(r'\s*([0-9]+(?:\.[0-9]+)?)\s*([KMGT]?)(?:i?B)?\s*',
                         text, re.IGNORECASE)
    if not match:
        raise ValueError('not a size: %r' % text)
    number, unit = match.groups()
    return int(float(number) * _UNITS[unit.upper()])


def size_label(size):
    """Short label of a size: ``8G``, ``750M``, ``1536K``."""
    for unit in ('T', 'G', 'M', 'K'):
        if size >= _UNITS[unit] and size % _UNITS[unit] == 0:
            return '%d%s' % (size // _UNITS[unit], unit)
    return str(size)


def hash_floor(size, algorithms=('md5', 'sha512'), block_size=4 * MiB):
    """Seconds to hash ``size`` zero bytes with every algorithm at once.

    Each algorithm runs in its own thread over one preallocated zero
    buffer (hashlib releases the GIL for large buffers); the result is the
    wall time from the common start until the slowest one is done.
    """
    zeros = bytes(block_size)
    full, rest = divmod(size, block_size)
    start = threading.Barrier(len(algorithms) + 1)
    errors = []

    def work(name):
        digest = hashlib.new(name, usedforsecurity=False)
        start.wait()
        try:
            for _ in range(full):
                digest.update(zeros)
            if rest:
                digest.update(memoryview(zeros)[:rest])
            digest.hexdigest()
        except Exception as e:  # pragma: no cover - hashlib does not fail
            errors.append(e)

    threads = [threading.Thread(target=work, args=(name,), daemon=True)
               for name in algorithms]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.monotonic()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - began
    if errors:
        raise errors[0]
    return elapsed


# /proc

ProcStat = collections.namedtuple('ProcStat', 'pid ppid rss cpu child_cpu')


def read_proc_stat(pid):
    """ProcStat of a process (RSS in bytes, CPU in ticks), None if gone."""
    try:
        with open('/proc/%d/stat' % pid) as f:
            text = f.read()
    except OSError:
        return None
    # The command name may hold spaces and parentheses; fields after the
    # last ')' start with field 3 (state).
    fields = text.rsplit(')', 1)[1].split()
    return ProcStat(pid=pid, ppid=int(fields[1]),
                    rss=int(fields[21]) * _PAGE_SIZE,
                    cpu=int(fields[11]) + int(fields[12]),
                    child_cpu=int(fields[13]) + int(fields[14]))


def process_table():
    """``{pid: ProcStat}`` of every process on the machine."""
    table = {}
    for entry in os.listdir('/proc'):
        if entry.isdigit():
            stat = read_proc_stat(int(entry))
            if stat is not None:
                table[stat.pid] = stat
    return table


def descendants(table, root):
    """Pids below ``root`` in ``table``, as ``{pid: depth}``."""
    children = collections.defaultdict(list)
    for stat in table.values():
        children[stat.ppid].append(stat.pid)
    found = {}
    todo = [(pid, 1) for pid in children.get(root, ())]
    while todo:
        pid, depth = todo.pop()
        found[pid] = depth
        todo.extend((child, depth + 1) for child in children.get(pid, ()))
    return found


def machine_busy_ticks():
    """CPU ticks the whole machine spent not idle, steal included."""
    with open('/proc/stat') as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal [guest guest_nice]:
    # guest time is already counted in user.
    return sum(fields[:8]) - fields[3] - fields[4]


class ProcessSampler(object):
    """Samples a uWSGI process tree and the machine in a thread.

    Workers are the children of the uWSGI master (its HTTP router among
    them: a few MiB that do not move), helpers everything below the
    workers (qemu-img, qemu-nbd). After ``mark_baseline()``,
    ``worker_growth`` is the peak of the workers' summed RSS minus the
    highest sum seen before the mark, ``worker_retained`` the sum at the
    last sample minus that baseline; ``helper_peak`` is the peak of the
    helpers' summed RSS.

    ``others_cpu`` is the CPU, in cores on average, that every process
    outside the uWSGI tree, ``own_pids`` and this process used between the
    mark and ``stop()``: the noise from whatever else runs on the machine,
    steal time included.

    :param master_pid: pid of the uWSGI master; None samples only the
        machine
    :param own_pids: callable returning the other pids that belong to the
        measurement (the Ceph daemons)
    :param interval: seconds between samples
    """

    def __init__(self, master_pid, own_pids=lambda: (), interval=0.1):
        self.master_pid = master_pid
        self.own_pids = own_pids
        self.interval = interval
        self.worker_baseline = None
        self.worker_peak = 0
        self.worker_now = 0
        self.helper_peak = 0
        self.helpers_seen = set()
        self.samples = 0
        self.elapsed = None
        self.others_cpu = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None
        self._mark = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc_info):
        self.stop()

    @property
    def worker_growth(self):
        return max(0, self.worker_peak - (self.worker_baseline or 0))

    @property
    def worker_retained(self):
        return self.worker_now - (self.worker_baseline or 0)

    def start(self):
        self.mark_baseline()
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name='bench-sampler')
        self._thread.start()

    def mark_baseline(self):
        """Start measuring now; RSS seen so far is the baseline."""
        sampled = self._sample()
        with self._lock:
            self.worker_baseline = self.worker_peak
            self.helper_peak = 0
            self.helpers_seen.clear()
            self._mark = (time.monotonic(), machine_busy_ticks(),
                          self._own_ticks(sampled))

    def stop(self):
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join()
        self._thread = None
        end = (time.monotonic(), machine_busy_ticks(),
               self._own_ticks(self._sample()))
        self.elapsed = end[0] - self._mark[0]
        others = (end[1] - self._mark[1]) - (end[2] - self._mark[2])
        self.others_cpu = max(0.0, others / _CLK_TCK /
                              max(self.elapsed, 1e-6))

    def _run(self):
        while not self._stop.wait(self.interval):
            self._sample()

    def _sample(self):
        table = process_table()
        tree = descendants(table, self.master_pid)
        workers = sum(table[p].rss for p, depth in tree.items()
                      if depth == 1)
        helpers = [p for p, depth in tree.items() if depth > 1]
        names = {_comm(p) for p in helpers}
        with self._lock:
            self.worker_now = workers
            self.worker_peak = max(self.worker_peak, workers)
            self.helper_peak = max(self.helper_peak,
                                   sum(table[p].rss for p in helpers))
            self.helpers_seen |= names
            self.samples += 1
        return table, tree

    def _own_ticks(self, sampled):
        table, tree = sampled
        pids = set(tree) | {self.master_pid, os.getpid()}
        pids |= {p for p in self.own_pids() if p}
        # A process reaped by its parent moves its CPU, and its reaped
        # children's, into the parent's child_cpu: summing both over the
        # tree counts every tick once, whenever a helper exits.
        return sum(table[p].cpu + table[p].child_cpu for p in pids
                   if p in table)


def _comm(pid):
    try:
        with open('/proc/%d/comm' % pid) as f:
            return f.read().strip()
    except OSError:
        return '?'


# The plugin's summary line

_SUMMARY_RE = re.compile(
    r'Image (?P<image>\S+) imported sparse to (?P<stores>\S*): '
    r'virtual (?P<virtual>\d+), allocated (?P<allocated>\d+), '
    r'written (?P<written>\d+), zero skipped (?P<skipped>\d+) bytes; '
    r'(?P<phases>[^;]*); (?P<rate>[0-9.]+) MB/s')
_PHASE_RE = re.compile(r'([\w-]+) ([0-9.]+)s')


def parse_import_summary(log_text, image_id=None):
    """The plugin's summary of an import from Glance's log, or None.

    Returns a dict: ``line`` (the message, from ``Image``), ``image``,
    ``stores`` (list), ``virtual``, ``allocated``, ``written``, ``skipped``
    (bytes), ``phases`` (``{name: seconds}`` in log order), ``seconds``
    (their sum) and ``rate`` (MB/s). The last matching line wins.
    """
    found = None
    for line in log_text.splitlines():
        match = _SUMMARY_RE.search(line)
        if not match or (image_id and match.group('image') != image_id):
            continue
        phases = {name: float(secs) for name, secs in
                  _PHASE_RE.findall(match.group('phases'))}
        found = {
            'line': line[match.start():].strip(),
            'image': match.group('image'),
            'stores': [s for s in match.group('stores').split(',') if s],
            'virtual': int(match.group('virtual')),
            'allocated': int(match.group('allocated')),
            'written': int(match.group('written')),
            'skipped': int(match.group('skipped')),
            'phases': phases,
            'seconds': round(sum(phases.values()), 3),
            'rate': float(match.group('rate')),
        }
    return found


# One import

class ImportResult(object):
    """What one timed import measured; ``as_dict()`` for JSON."""

    def __init__(self, image_id, stores):
        self.image_id = image_id
        self.stores = list(stores)
        self.stage_seconds = None
        self.seconds = None
        self.worker_growth = None
        self.worker_baseline = None
        self.worker_retained = None
        self.helper_peak = None
        self.helpers = []
        self.others_cpu = None
        self.rss_samples = 0
        self.rbd_used = {}
        self.image = None
        self.summary = None

    def as_dict(self):
        return {
            'image_id': self.image_id,
            'stores': self.stores,
            'stage_seconds': _round(self.stage_seconds),
            'seconds': _round(self.seconds),
            'worker_rss_growth': self.worker_growth,
            'worker_rss_baseline': self.worker_baseline,
            'worker_rss_retained': self.worker_retained,
            'helper_rss_peak': self.helper_peak,
            'helpers': self.helpers,
            'others_cpu_cores': _round(self.others_cpu),
            'rss_samples': self.rss_samples,
            'rbd_diff_bytes': self.rbd_used,
            'size': (self.image or {}).get('size'),
            'virtual_size': (self.image or {}).get('virtual_size'),
            'checksum': (self.image or {}).get('checksum'),
            'os_hash_value': (self.image or {}).get('os_hash_value'),
            'plugin_summary': self.summary,
        }


def _round(value, digits=3):
    return None if value is None else round(value, digits)


def _read_from(path, offset):
    try:
        with open(path, 'rb') as f:
            f.seek(offset)
            return f.read().decode(errors='replace')
    except OSError:
        return ''


def _log_size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def stage_image(glance, path, disk_format, name):
    """Create an image and stage ``path`` with the ``glance`` CLI.

    Returns the image id once the image is ``uploading``.
    """
    result = glance.run('image-create', '--disk-format', disk_format,
                        '--container-format', 'bare', '--name', name)
    image_id = cli_bed.parse_table(result.stdout).get('id')
    if not image_id:
        raise BenchError('no image id from glance image-create:\n%s'
                         % result.output)
    glance.run('image-stage', '--file', path, image_id)
    glance.wait_for_status(image_id, 'uploading', timeout=60)
    return image_id


def _fail(glance, image_id, why):
    try:
        tasks = glance.task_list_for_image(image_id)
    except Exception as e:
        tasks = 'unavailable: %s' % e
    raise BenchError('import of image %s %s; tasks: %s' % (
        image_id, why, json.dumps(tasks, indent=1, default=str)))


def wait_active(glance, image_id, timeout, interval):
    """Poll the image until ``active``; return (image, monotonic time).

    Fails at once when the import failed: status ``killed``, or any store
    in ``os_glance_failed_import``.
    """
    deadline = time.monotonic() + timeout
    while True:
        image = glance.get_image(image_id)
        now = time.monotonic()
        if image['status'] == 'active':
            return image, now
        if image['status'] in ('killed', 'deleted'):
            _fail(glance, image_id, 'ended %s' % image['status'])
        if image.get('os_glance_failed_import'):
            _fail(glance, image_id, 'failed for stores %s' %
                  image['os_glance_failed_import'])
        if now > deadline:
            _fail(glance, image_id, 'not active after %ds (status %s)' % (
                timeout, image['status']))
        time.sleep(interval)


def timed_import(api, glance, clusters, path, disk_format, stores, name,
                 timeout=1800, poll_interval=0.2, sample_interval=0.1,
                 baseline_seconds=0.5):
    """Stage ``path``, import it to ``stores`` and measure until active.

    The clock starts right before ``POST /v2/images/<id>/import`` (staging
    is the same HTTP upload whatever imports the data, so it is timed
    apart) and stops at the first poll that sees ``active``. The image is
    left in place: the caller reads ``rbd diff`` and deletes it.

    :param clusters: ``{store name: CephCluster}``, the target stores
        among them (their daemons count as part of the measurement, not
        as noise)
    """
    started = time.monotonic()
    image_id = stage_image(glance, path, disk_format, name)
    result = ImportResult(image_id, stores)
    result.stage_seconds = time.monotonic() - started
    # Writeback of the staged file must not spill into the measurement.
    os.sync()
    log_offset = _log_size(api.log_path)
    body = {'method': {'name': 'glance-direct'}, 'stores': stores,
            'all_stores_must_succeed': True}
    _timed_post(api, clusters, result, body, lambda: wait_active(
        glance, image_id, timeout, poll_interval), sample_interval,
        baseline_seconds)
    for store in stores:
        result.rbd_used[store] = clusters[store].rbd_used_bytes(
            image_id, snap='snap')
    if 'sparse_rbd_import' in api.plugins:
        result.summary = _wait_for_summary(api, log_offset, image_id)
    return result


def _timed_post(api, clusters, result, body, wait, sample_interval,
                baseline_seconds):
    """POST ``body`` to the image's import call; time it until ``wait()``.

    ``wait`` returns ``(image, monotonic time)`` of the end. Fills in
    ``result``: seconds, image, the workers' memory and the machine's
    other CPU use meanwhile.
    """
    master = procs.read_pid(api.pid_path)
    if not master:
        raise BenchError('no uWSGI master pid in %s' % api.pid_path)

    def ceph_pids():
        return [procs.read_pid(c.pid_file(d)) for c in clusters.values()
                for d in ('mon.a', 'osd.0')]

    sampler = ProcessSampler(master, ceph_pids, sample_interval)
    with sampler:
        time.sleep(baseline_seconds)
        sampler.mark_baseline()
        began = time.monotonic()
        status, answer = api.request('POST', '/v2/images/%s/import'
                                     % result.image_id, body)
        if status != 202:
            raise BenchError('POST import of %s: %s %s' % (
                result.image_id, status, answer))
        image, ended = wait()
    result.seconds = ended - began
    result.image = image
    result.worker_growth = sampler.worker_growth
    result.worker_baseline = sampler.worker_baseline
    result.worker_retained = sampler.worker_retained
    result.helper_peak = sampler.helper_peak
    result.helpers = sorted(sampler.helpers_seen)
    result.others_cpu = sampler.others_cpu
    result.rss_samples = sampler.samples


def _store_list(image, key):
    return set(filter(None, (image.get(key) or '').split(',')))


def wait_copied(glance, image_id, stores, timeout, interval):
    """Poll until every one of ``stores`` holds the image.

    Returns (image, monotonic time). Fails at once when a store of
    ``stores`` is listed in ``os_glance_failed_import`` or the image is no
    longer ``active``.
    """
    deadline = time.monotonic() + timeout
    stores = set(stores)
    while True:
        image = glance.get_image(image_id)
        now = time.monotonic()
        if (stores <= _store_list(image, 'stores') and not
                stores & _store_list(image, 'os_glance_importing_to_stores')):
            return image, now
        failed = stores & _store_list(image, 'os_glance_failed_import')
        if failed:
            _fail(glance, image_id, 'failed for stores %s' % ','.join(
                sorted(failed)))
        if image['status'] != 'active':
            _fail(glance, image_id, 'is %s' % image['status'])
        if now > deadline:
            _fail(glance, image_id, 'not in %s after %ds' % (
                ','.join(sorted(stores)), timeout))
        time.sleep(interval)


def timed_copy(api, glance, clusters, image_id, stores, timeout=1800,
               poll_interval=0.2, sample_interval=0.1, baseline_seconds=0.5):
    """Copy an active image to more ``stores`` with ``copy-image``; time it.

    Glance runs no import plugin for ``copy-image``: this is the stock
    path whatever the API's plugins. The clock runs from ``POST
    /v2/images/<id>/import`` until a poll sees every store of ``stores``
    holding the image.
    """
    wait_tasks_ended(api, image_id)
    result = ImportResult(image_id, stores)
    result.stage_seconds = 0.0
    os.sync()
    body = {'method': {'name': 'copy-image'}, 'stores': stores,
            'all_stores_must_succeed': True}
    _timed_post(api, clusters, result, body, lambda: wait_copied(
        glance, image_id, stores, timeout, poll_interval), sample_interval,
        baseline_seconds)
    for store in stores:
        result.rbd_used[store] = clusters[store].rbd_used_bytes(
            image_id, snap='snap')
    return result


def _wait_for_summary(api, log_offset, image_id, timeout=10):
    # The plugin sets the image active before it logs its summary.
    deadline = time.monotonic() + timeout
    while True:
        summary = parse_import_summary(
            _read_from(api.log_path, log_offset), image_id)
        if summary:
            return summary
        if time.monotonic() > deadline:
            # Glance runs the import without a plugin it cannot load.
            raise BenchError(
                'image %s went active without sparse_rbd_import: no '
                'summary line in %s (did the plugin load?)' % (
                    image_id, api.log_path))
        time.sleep(0.2)


def wait_tasks_ended(api, image_id, timeout=120):
    """Wait until no task of the image is pending or processing.

    An image goes active before its import task has finished: until then
    the task holds the image's import lock (another import gets 409), and
    on sqlite a delete meanwhile fails with "database is locked".
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, body = api.request('GET', '/v2/images/%s/tasks' % image_id)
        if status != 200 or all(t['status'] in ('success', 'failure')
                                for t in body['tasks']):
            return
        time.sleep(0.5)


def delete_image(api, clusters, image_id, stores):
    """Delete an image through the API; purge what Glance left in Ceph.

    Waits for the image's tasks to end first.
    """
    wait_tasks_ended(api, image_id)
    status, body = api.request('DELETE', '/v2/images/%s' % image_id,
                               timeout=300)
    if status not in (204, 404):
        raise BenchError('DELETE image %s: %s %s' % (image_id, status, body))
    for store in stores:
        cluster = clusters[store]
        if image_id in cluster.rbd_images():
            cluster.purge_image(image_id)
