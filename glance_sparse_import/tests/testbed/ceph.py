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

"""A throwaway Ceph cluster: one monitor and one memstore OSD.

Several clusters can run at once: each has its own directory and its own
monitor port pair. RBD I/O works without a manager daemon; pool quotas
need one (pool usage reaches the monitor through it), so it is optional.
"""

import json
import os
import signal
import uuid

from glance_sparse_import.tests.testbed import procs

GiB = 1024 ** 3

CONF_TEMPLATE = """\
[global]
fsid = {fsid}
mon host = {mon_addrs}
auth cluster required = none
auth service required = none
auth client required = none
keyring = /dev/null
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon data avail warn = 1
mon data avail crit = 0
# The default 1 s between monitor proposals makes every map change (OSD
# boot, pool creation, PG creation) wait; a start takes 7 s instead of 1 s.
paxos propose interval = 0.1
paxos min wait = 0.01
osd crush chooseleaf type = 0
osd objectstore = memstore
memstore device bytes = {memstore_bytes}
ms bind ipv6 = false
run dir = {run_dir}
{extra}
[mon]
mon data = {workdir}/mon-$id
admin socket = {run_dir}/$name.asok
pid file = {run_dir}/$name.pid
log file = {log_dir}/$name.log

[osd]
osd data = {workdir}/osd-$id
admin socket = {run_dir}/$name.asok
pid file = {run_dir}/$name.pid
log file = {log_dir}/$name.log
# memstore keeps data in RAM and saves it only on a clean umount, which the
# default fast shutdown skips; stop_osd()/start_osd() must keep the data.
osd fast shutdown = false
"""

MGR_CONF = """
[mgr]
mgr data = {workdir}/mgr-$id
admin socket = {run_dir}/$name.asok
pid file = {run_dir}/$name.pid
log file = {log_dir}/$name.log
# Only the statistics are wanted: no module runs.
mgr disabled modules = {modules}
"""
MGR_MODULES = ('balancer', 'crash', 'devicehealth', 'orchestrator',
               'pg_autoscaler', 'progress', 'rbd_support', 'status',
               'telemetry', 'volumes')
# Pool usage then reaches the monitor within seconds, not 15 s: a quota is
# enforced that late.
MGR_GLOBAL = {'mgr stats period': 1, 'mon mgr digest period': 1,
              'mon tick interval': 1}


class CephError(Exception):
    """A Ceph command failed or the cluster did not come up."""


class CephCluster(object):
    """One monitor (``mon.a``) and one memstore OSD (``osd.0``).

    :param workdir: directory owned by this cluster (created if missing)
    :param name: label used for the ceph.conf file name
    :param memstore_bytes: RAM the OSD may fill; a full pool blocks writes
    :param pool: RBD pool created and initialised on start
    :param connect_timeout: seconds a CLI call waits for the monitor
    :param extra_conf: ``{option: value}`` added to ``[global]``
    :param mgr: also run a manager daemon (``mgr.x``), which pool quotas
        need
    """

    MON_ID = 'a'
    OSD_ID = 0
    MGR_ID = 'x'

    def __init__(self, workdir, name='ceph', memstore_bytes=6 * GiB,
                 pool='images', pg_num=8, connect_timeout=10,
                 extra_conf=None, mgr=False):
        self.workdir = os.path.abspath(workdir)
        self.name = name
        self.memstore_bytes = int(memstore_bytes)
        self.pool = pool
        self.pg_num = pg_num
        self.connect_timeout = connect_timeout
        self.extra_conf = dict(extra_conf or {})
        self.mgr = mgr
        self.conf_path = os.path.join(self.workdir, '%s.conf' % name)
        self.run_dir = os.path.join(self.workdir, 'run')
        self.log_dir = os.path.join(self.workdir, 'log')
        self.fsid = None
        self.mon_port = None
        self._osd_uuid = None
        self._pids = {}

    def __repr__(self):
        return '<CephCluster %s fsid=%s port=%s>' % (
            self.name, self.fsid, self.mon_port)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc_info):
        self.stop()

    @property
    def mon_addrs(self):
        return '[v2:127.0.0.1:%d,v1:127.0.0.1:%d]' % (
            self.mon_port + 1, self.mon_port)

    def pid_file(self, daemon):
        """Pid file of ``daemon``, such as ``'mon.a'`` or ``'osd.0'``."""
        return os.path.join(self.run_dir, '%s.pid' % daemon)

    def log_file(self, daemon):
        return os.path.join(self.log_dir, '%s.log' % daemon)

    def start(self):
        """Create the cluster and the pool; return when RBD is usable."""
        for attempt in range(3):
            try:
                self._start_mon()
                break
            except CephError:
                # Another process may take the port between choosing and
                # binding it; try a fresh pair.
                self._stop_daemon('mon.%s' % self.MON_ID)
                if attempt == 2:
                    raise
        try:
            self._create_osd()
            self.start_osd()
            self.ceph('osd', 'pool', 'create', self.pool, str(self.pg_num))
            self.rbd('pool', 'init', self.pool, timeout=120)
            if self.mgr:
                self._start_mgr()
        except Exception:
            self.stop()
            raise

    def stop(self):
        """Stop the daemons and wait for them to exit; keep the files."""
        self._stop_daemon('mgr.%s' % self.MGR_ID)
        # The OSD saves memstore to disk on a clean stop: pointless here.
        self._stop_daemon('osd.%d' % self.OSD_ID, signal.SIGKILL)
        self._stop_daemon('mon.%s' % self.MON_ID)

    def stop_osd(self, sig=signal.SIGTERM, timeout=120):
        """Stop the OSD; client I/O then blocks until start_osd().

        With SIGTERM the OSD saves its memstore and start_osd() brings the
        data back; with SIGKILL everything written since the last clean
        stop is lost.
        """
        self._stop_daemon('osd.%d' % self.OSD_ID, sig, timeout)

    def start_osd(self, timeout=60):
        """Start the OSD and wait until the monitor sees it up."""
        osd = 'osd.%d' % self.OSD_ID
        self._run(['ceph-osd', '--conf', self.conf_path,
                   '-i', str(self.OSD_ID)], timeout=timeout)
        self._remember_pid(osd)
        procs.wait_until(self._osd_up, timeout,
                         '%s of %s did not come up' % (osd, self.name))

    def stop_mon(self, timeout=60):
        """Stop the monitor: clients can no longer connect.

        The OSD keeps running and finds the monitor again after
        start_mon().
        """
        self._stop_daemon('mon.%s' % self.MON_ID, timeout=timeout)

    def start_mon(self, timeout=60):
        """Start the stopped monitor again, on its ports, with its data."""
        mon = 'mon.%s' % self.MON_ID
        self._run(['ceph-mon', '--conf', self.conf_path, '-i', self.MON_ID],
                  timeout=timeout)
        self._remember_pid(mon)
        procs.wait_until(self._osd_up, timeout,
                         '%s of %s did not come back' % (mon, self.name))

    def ceph(self, *args, timeout=60):
        """Run the ``ceph`` CLI; return its stdout."""
        return self._run(['ceph', '--conf', self.conf_path,
                          '--connect-timeout', str(self.connect_timeout)]
                         + list(args), timeout=timeout)

    def rbd(self, *args, timeout=300):
        """Run the ``rbd`` CLI; return its stdout."""
        return self._run(['rbd'] + self._client_args() + list(args),
                         timeout=timeout)

    def rados(self, *args, timeout=300):
        """Run the ``rados`` CLI; return its stdout."""
        return self._run(['rados'] + self._client_args() + list(args),
                         timeout=timeout)

    def rbd_used_bytes(self, image, pool=None, snap=None):
        """Bytes allocated in an RBD image, the sum of ``rbd diff``."""
        spec = '%s/%s' % (pool or self.pool, image)
        if snap:
            spec += '@' + snap
        extents = json.loads(self.rbd('diff', '--format', 'json', spec))
        return sum(e['length'] for e in extents
                   if str(e['exists']).lower() == 'true')

    def purge_image(self, image, pool=None):
        """Remove an RBD image with its snapshots, protected or not."""
        spec = '%s/%s' % (pool or self.pool, image)
        snaps = json.loads(self.rbd('snap', 'ls', '--format', 'json', spec))
        for snap in snaps:
            if str(snap.get('protected')).lower() == 'true':
                self.rbd('snap', 'unprotect', '%s@%s' % (spec, snap['name']))
        self.rbd('snap', 'purge', '--no-progress', spec)
        self.rbd('rm', '--no-progress', spec)

    def rbd_images(self, pool=None):
        return json.loads(self.rbd('ls', '--format', 'json',
                                   pool or self.pool))

    def _client_args(self):
        # rbd rejects --connect-timeout and rados accepts but ignores it
        # (a dead monitor then hangs it 300 s); this option works for both.
        return ['--conf', self.conf_path,
                '--client-mount-timeout', str(self.connect_timeout)]

    def _start_mon(self):
        mon = 'mon.%s' % self.MON_ID
        self.fsid = str(uuid.uuid4())
        self.mon_port = procs.free_port_pair()
        for path in (self.run_dir, self.log_dir):
            os.makedirs(path, exist_ok=True)
        mon_data = os.path.join(self.workdir, 'mon-%s' % self.MON_ID)
        procs.rmtree(mon_data)
        self._write_conf()
        monmap = os.path.join(self.workdir, 'monmap')
        self._run(['monmaptool', '--create', '--clobber', '--fsid', self.fsid,
                   '--addv', self.MON_ID, self.mon_addrs, monmap])
        self._run(['ceph-mon', '--conf', self.conf_path, '--mkfs',
                   '-i', self.MON_ID, '--monmap', monmap])
        # ceph-mon returns once the forked daemon has bound its ports.
        self._run(['ceph-mon', '--conf', self.conf_path, '-i', self.MON_ID])
        self._remember_pid(mon)

    def _start_mgr(self, timeout=60):
        mgr = 'mgr.%s' % self.MGR_ID
        os.makedirs(os.path.join(self.workdir, 'mgr-%s' % self.MGR_ID),
                    exist_ok=True)
        self._run(['ceph-mgr', '--conf', self.conf_path, '-i', self.MGR_ID],
                  timeout=timeout)
        self._remember_pid(mgr)
        procs.wait_until(self._mgr_available, timeout,
                         '%s of %s did not come up' % (mgr, self.name))

    def _mgr_available(self):
        return json.loads(self.ceph('mgr', 'dump', '--format',
                                    'json'))['available']

    def _create_osd(self):
        self._osd_uuid = str(uuid.uuid4())
        osd_id = self.ceph('osd', 'new', self._osd_uuid).strip()
        if osd_id != str(self.OSD_ID):
            raise CephError('expected osd.%d, got %r' % (self.OSD_ID, osd_id))
        os.makedirs(os.path.join(self.workdir, 'osd-%s' % osd_id))
        self._run(['ceph-osd', '--conf', self.conf_path, '-i', osd_id,
                   '--mkfs', '--osd-uuid', self._osd_uuid])

    def _osd_up(self):
        dump = json.loads(self.ceph('osd', 'dump', '--format', 'json'))
        return any(o['osd'] == self.OSD_ID and o['up'] for o in dump['osds'])

    def _write_conf(self):
        options = dict(MGR_GLOBAL) if self.mgr else {}
        options.update(self.extra_conf)
        extra = ''.join('%s = %s\n' % item for item in sorted(options.items()))
        text = CONF_TEMPLATE.format(
            fsid=self.fsid, mon_addrs=self.mon_addrs,
            memstore_bytes=self.memstore_bytes, workdir=self.workdir,
            run_dir=self.run_dir, log_dir=self.log_dir, extra=extra)
        if self.mgr:
            text += MGR_CONF.format(workdir=self.workdir,
                                    run_dir=self.run_dir,
                                    log_dir=self.log_dir,
                                    modules=','.join(MGR_MODULES))
        with open(self.conf_path, 'w') as f:
            f.write(text)

    def _remember_pid(self, daemon):
        # Kept in memory too: if the pid file goes away with the work
        # directory, stop() must still find the daemon.
        pid = procs.read_pid(self.pid_file(daemon))
        if not pid:
            raise CephError('%s of %s did not start' % (daemon, self.name))
        self._pids[daemon] = pid

    def _stop_daemon(self, daemon, sig=signal.SIGTERM, timeout=60):
        binary = 'ceph-' + daemon.split('.')[0]
        pid = procs.read_pid(self.pid_file(daemon)) or self._pids.get(daemon)
        procs.kill_pid(pid, binary, sig, timeout)
        self._pids.pop(daemon, None)
        try:
            os.unlink(self.pid_file(daemon))
        except FileNotFoundError:
            pass

    def _run(self, cmd, timeout=60):
        try:
            return procs.run(cmd, timeout=timeout)
        except procs.CommandError as e:
            if 'timed out' in str(e):
                raise CephError('%s\n%s' % (e, self.daemon_states()))
            raise CephError(str(e))

    def daemon_states(self, lines=15):
        """Which daemons run, and the end of the OSD's log: for a hang."""
        states = []
        for daemon, binary in (('mon.%s' % self.MON_ID, 'ceph-mon'),
                               ('osd.%d' % self.OSD_ID, 'ceph-osd')):
            pid = self._pids.get(daemon)
            states.append('%s %s' % (daemon, 'running' if pid and
                                     procs.pid_alive(pid, binary)
                                     else 'NOT running'))
        try:
            with open(self.log_file('osd.%d' % self.OSD_ID),
                      errors='replace') as f:
                tail = f.readlines()[-lines:]
        except OSError as e:
            tail = ['(no OSD log: %s)\n' % e]
        return '%s: %s; end of the OSD log:\n%s' % (
            self.name, ', '.join(states), ''.join(tail))
