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

"""The fallbacks of glance_compat, each forced on today's Glance.

Where a fallback needs an older library, the same code path is driven with
objects of the shape that library has; the series environments run it on
the real ones.
"""

import contextlib
import importlib.util
import os
import subprocess
import sys
import types

from oslo_config import cfg
import pytest

from glance_sparse_import import glance_compat as compat
from glance_sparse_import import inspection
from glance_sparse_import import plugin
from glance_sparse_import.sources.base import Chunk
from glance_sparse_import import stores
from glance_sparse_import.tests import disk_images as images

MiB = 1024 ** 2


def test_nothing_missing_here():
    # The distribution's bindings exist for its own interpreter only; the
    # environments on another Python lack them, and the plugin says so.
    glance_side = [p for p in compat.problems()
                   if not p.startswith('Python module ')]
    assert glance_side == []
    for name in ('rados', 'rbd', 'nbd'):
        missing = 'Python module %s (install python3-' % name
        assert (importlib.util.find_spec(name) is None) == any(
            p.startswith(missing) for p in compat.problems())
    assert compat.describe()['format inspector'] == compat.INSPECTOR


# --- glance_store -------------------------------------------------------


class _Group(object):
    def __init__(self, timeout):
        self.rados_connect_timeout = timeout


def _store(timeout, backend='ceph', store_conf=True):
    store = types.SimpleNamespace(backend_group=backend,
                                  pool='images', user='glance',
                                  conf_file='/etc/ceph/ceph.conf',
                                  chunk_size=8 * MiB)
    if store_conf:
        store.store_conf = _Group(timeout)
    else:
        # glance_store 4.x: the options live in the backend's group.
        store.conf = types.SimpleNamespace(ceph=_Group(timeout),
                                           glance_store=_Group(timeout + 1))
    return store


def test_store_conf():
    assert compat.rados_connect_timeout(_store(30)) == 30


def test_store_without_store_conf_reads_backend_group():
    assert compat.rados_connect_timeout(_store(30, store_conf=False)) == 30


def test_single_store_without_store_conf_reads_glance_store_group():
    store = _store(30, backend=None, store_conf=False)
    assert compat.rados_connect_timeout(store) == 31


@pytest.mark.parametrize('timeout,expected', [
    (-1, 120), (0, 120), (5, 5)])
def test_connect_timeout_zero_or_less_is_unset(timeout, expected):
    # glance_store <= 4.6 defaults rados_connect_timeout to 0 and ignores
    # it: ceph_op_timeout must still bound the plugin's Ceph waits.
    store = stores._from_store('ceph', _store(timeout, store_conf=False))
    conf = types.SimpleNamespace(ceph_op_timeout=120)
    assert stores.op_timeout(store, conf) == expected


# --- Glance ---------------------------------------------------------------


def test_db_reader_falls_back_to_get_session(monkeypatch):
    closed = []

    class Session(object):
        def close(self):
            closed.append(True)

    glance = compat._deferred.load()
    monkeypatch.setattr(glance, 'session_for_read', None)
    monkeypatch.setattr(glance, 'get_session', Session)
    with compat.db_reader() as session:
        assert isinstance(session, Session)
    assert closed == [True]


def test_db_reader_uses_session_for_read(monkeypatch):
    used = []

    @contextlib.contextmanager
    def session_for_read():
        used.append(True)
        yield 'session'

    monkeypatch.setattr(compat._deferred.load(), 'session_for_read',
                        session_for_read)
    with compat.db_reader() as session:
        assert session == 'session'
    assert used == [True]


def test_gpt_option_default_before_glance_30(monkeypatch):
    monkeypatch.setattr(compat, '_HAS_GPT_OPTION', False)
    assert compat.gpt_nonfatal_checks() == ['mbr']


def test_gpt_option_read_when_present():
    if not compat._HAS_GPT_OPTION:
        # Glance before 30 (a series environment): its default applies.
        assert compat.gpt_nonfatal_checks() == ['mbr']
        return
    cfg.CONF.set_override('gpt_safety_checks_nonfatal', ['mbr', 'gpt'],
                          group='image_format')
    try:
        assert compat.gpt_nonfatal_checks() == ['mbr', 'gpt']
    finally:
        cfg.CONF.clear_override('gpt_safety_checks_nonfatal',
                                group='image_format')


class _ImageOnly(object):
    """An action of Glance 22: reads and ``size`` only through ``_image``."""

    def __init__(self):
        self._image = types.SimpleNamespace(
            disk_format='qcow2', extra_properties={'k': 'v'}, size=None,
            status='importing')
        self.saved = []

    def set_image_attribute(self, **attrs):
        # Glance 22's allowed list.
        for name, value in attrs.items():
            if name not in ('status', 'disk_format', 'container_format',
                            'virtual_size'):
                raise AttributeError('Setting %s is not allowed' % name)
            setattr(self._image, name, value)


def test_image_reads_fall_back_to_the_image(monkeypatch):
    monkeypatch.setattr(compat._deferred.load(), 'action_reads', False)
    action = _ImageOnly()
    assert compat.image_disk_format(action) == 'qcow2'
    properties = compat.image_extra_properties(action)
    assert properties == {'k': 'v'}
    properties['k'] = 'changed'
    assert action._image.extra_properties == {'k': 'v'}


def test_image_reads_from_the_action_when_it_has_them():
    glance = compat._deferred.load()
    if not glance.action_reads:
        # Glance before 25 (a series environment): nothing to read there.
        assert not hasattr(_actions_class(), 'image_disk_format')
        return
    action = _actions_class()(types.SimpleNamespace(
        disk_format='vmdk', extra_properties={'a': 'b'}))
    assert compat.image_disk_format(action) == 'vmdk'
    assert compat.image_extra_properties(action) == {'a': 'b'}


def _actions_class():
    from glance.async_.flows import api_image_import
    return api_image_import._ImportActions


def test_sets_size_detected_on_glance_22_shape():
    class Glance22(_ImageOnly):
        pass
    assert compat._sets_size(Glance22) is False
    assert compat._sets_size(None) is False


def test_sets_size_detected_on_this_glance():
    from importlib import metadata
    major = int(metadata.version('glance').split('.')[0])
    assert compat._sets_size(_actions_class()) is (major >= 23)
    assert compat._deferred.load().sets_size is (major >= 23)


def test_size_set_on_the_image_where_glance_refuses_it(monkeypatch):
    monkeypatch.setattr(compat._deferred.load(), 'sets_size', False)
    action = _ImageOnly()
    compat.set_image_attribute(action, size=1234, virtual_size=4096,
                               disk_format='raw')
    assert (action._image.size, action._image.virtual_size,
            action._image.disk_format) == (1234, 4096, 'raw')
    compat.set_image_attribute(action, size=99)
    assert action._image.size == 99


def test_size_through_the_action_where_glance_accepts_it(monkeypatch):
    monkeypatch.setattr(compat._deferred.load(), 'sets_size', True)
    action = _ImageOnly()
    # Glance 22's action refuses it: proof the action was asked.
    with pytest.raises(AttributeError, match='Setting size'):
        compat.set_image_attribute(action, size=1)


def test_vmdk_types_default_before_glance_23_1(monkeypatch):
    monkeypatch.setattr(compat, '_HAS_VMDK_OPTION', False)
    assert compat.vmdk_allowed_types() == ['streamOptimized',
                                           'monolithicSparse']
    assert compat.describe()['[image_format] vmdk_allowed_types'] == \
        'default streamOptimized,monolithicSparse'


def test_vmdk_types_read_when_present():
    if not compat._HAS_VMDK_OPTION:
        # Glance 22 as released (a series environment): the default.
        assert compat.vmdk_allowed_types() == ['streamOptimized',
                                               'monolithicSparse']
        return
    cfg.CONF.set_override('vmdk_allowed_types', ['streamOptimized'],
                          group='image_format')
    try:
        assert compat.vmdk_allowed_types() == ['streamOptimized']
    finally:
        cfg.CONF.clear_override('vmdk_allowed_types', group='image_format')


def test_conversion_checks_read_from_its_source(monkeypatch, tmp_path):
    from importlib import metadata
    major = int(metadata.version('glance').split('.')[0])
    # Glance 22.1.1 has no backing-file check; every later release does.
    assert compat.conversion_checks_images() is (major > 22)
    for text, expected in (("if 'backing-filename' in metadata:\n", True),
                           ('qemu-img convert\n', False)):
        module = tmp_path / ('conv%d.py' % expected)
        module.write_text(text)
        monkeypatch.setattr(compat.importlib.util, 'find_spec',
                            lambda name: types.SimpleNamespace(
                                origin=str(module)))
        assert compat.conversion_checks_images() is expected
    monkeypatch.setattr(compat.importlib.util, 'find_spec',
                        lambda name: None)
    assert compat.conversion_checks_images() is None


def test_no_parallel_upload_before_glance_33(monkeypatch):
    monkeypatch.setattr(compat._deferred.load(),
                        'parallel_api_image_import', None)
    assert compat.uploads_in_parallel('glance-direct', ['a', 'b']) is False


# --- format inspector -----------------------------------------------------


@pytest.fixture(scope='module')
def qcow2(tmp_path_factory):
    path = str(tmp_path_factory.mktemp('compat') / 'disk.qcow2')
    images.run('qemu-img', 'create', '-q', '-f', 'qcow2', path, '64M')
    return path


def _stream(path):
    with open(path, 'rb') as f:
        data = f.read()
    return [Chunk(0, len(data), data)]


@pytest.fixture(params=['formats', 'format-only', 'glance-legacy'])
def inspector_api(request, monkeypatch):
    """Each way of telling a stream's format that glance_compat has.

    'format-only' is oslo.utils 7.3 (no InspectWrapper.formats);
    'glance-legacy' the per-format inspectors of Glance 26 to 29, driven
    with oslo.utils' classes, which have the same eat_chunk, complete and
    format_match.
    """
    if compat._LEGACY:
        # A series environment with Glance's own inspector: every
        # parameter runs it for real.
        return request.param
    if request.param == 'format-only':
        monkeypatch.setattr(compat, '_HAS_FORMATS', False)
    elif request.param == 'glance-legacy':
        monkeypatch.setattr(compat, '_fi', _legacy_module())
        monkeypatch.setattr(compat, '_LEGACY', True)
    return request.param


def _legacy_module():
    """oslo.utils' inspectors with Glance 26's safety_check (a bool)."""
    oslo = compat._fi

    def legacy(cls):
        def safety_check(self):
            try:
                cls.safety_check(self)
            except oslo.SafetyCheckFailed:
                return False
            return True
        return type('Legacy' + cls.__name__, (cls,),
                    {'safety_check': safety_check})

    return types.SimpleNamespace(
        ALL_FORMATS={name: legacy(cls)
                     for name, cls in oslo.ALL_FORMATS.items()},
        ImageFormatError=oslo.ImageFormatError)


def _inspectors(monkeypatch, oslo=None, own=None):
    """_inspector_module() with these two modules (None: not importable).

    :returns: its result and what it recorded as missing
    """
    modules = {'oslo_utils.imageutils.format_inspector': oslo,
               'glance.common.format_inspector': own}

    def fake_import(name, what=None):
        if modules[name] is None and what is not False:
            compat._missing(what or name, ImportError(name))
        return modules[name]

    monkeypatch.setattr(compat, '_import', fake_import)
    monkeypatch.setattr(compat, '_PROBLEMS', [])
    return compat._inspector_module(), compat.problems()


def _oslo(formats=True):
    wrapper = type('InspectWrapper', (), {'formats': None} if formats
                   else {})
    return types.SimpleNamespace(InspectWrapper=wrapper)


def _own():
    return types.SimpleNamespace(detect_file_format=lambda path: None)


def test_inspector_oslo_with_formats_first(monkeypatch):
    oslo = _oslo()
    (module, name), problems = _inspectors(monkeypatch, oslo, _own())
    assert (module, name) == (oslo, 'oslo_utils.imageutils.format_inspector')
    assert problems == []


def test_inspector_glance_own_without_oslo(monkeypatch):
    # Glance 26 to 29, and distribution builds of Glance 22 with the 2024
    # backports, on their own oslo.utils.
    own = _own()
    (module, name), problems = _inspectors(monkeypatch, None, own)
    assert (module, name) == (own, 'glance.common.format_inspector')
    assert problems == []


def test_inspector_glance_own_before_oslo_7_3(monkeypatch):
    own = _own()
    (module, name), _ = _inspectors(monkeypatch, _oslo(formats=False), own)
    assert module is own


def test_no_inspector_refuses_every_import_and_says_how_to_fix(
        monkeypatch, rbd_backends):
    # Glance 22 as released, on Wallaby's oslo.utils 4.8: a Glance module
    # without detect_file_format, no oslo inspector.
    (module, name), problems = _inspectors(
        monkeypatch, None, types.SimpleNamespace())
    assert (module, name) == (None, None)
    (problem,) = [p for p in problems if p.startswith('a format inspector')]
    assert "Glance's format safety checks cannot run" in problem
    assert 'pip install "oslo.utils>=7.4"' in problem
    flow = plugin.get_flow(task_id='t6', task_type='api_image_import',
                           backend=['ceph'], action_wrapper=_Wrapper())
    (task,) = list(flow)
    assert isinstance(task, plugin._Refuse)
    with pytest.raises(compat.UploadException,
                       match='oslo.utils>=7.4'):
        task.execute('file:///nonexistent/staging/image')


def test_stream_detector_raw(inspector_api):
    chunks = [Chunk(0, MiB, None), Chunk(MiB, 4096, b'x' * 4096)]
    assert list(inspection.checked_output(chunks)) == chunks


def test_stream_detector_refuses_qcow2_in_output(inspector_api, qcow2):
    with pytest.raises(inspection.errors.InvalidImage,
                       match='Converted image in unexpected format'):
        list(inspection.checked_output(_stream(qcow2)))


def test_stream_detector_decides_early(inspector_api):
    detector = compat.StreamDetector()
    detector.eat(bytes(MiB))
    assert detector.decided
    assert str(detector.result()) == 'raw'


def test_legacy_safety_check_returns_false(monkeypatch):
    monkeypatch.setattr(compat, '_LEGACY', True)

    class Unsafe(object):
        def safety_check(self):
            return False

        def __str__(self):
            return 'qcow2'

    with pytest.raises(compat.UnsafeImage) as e:
        compat.safety_check(Unsafe())
    assert list(e.value.failures) == ['qcow2']


def test_iso_volume(tmp_path):
    tree = tmp_path / 'tree'
    tree.mkdir()
    (tree / 'file').write_bytes(os.urandom(64 * 1024))
    iso = str(tmp_path / 'disk.iso')
    images.run('xorriso', '-as', 'mkisofs', '-quiet', '-o', iso, str(tree))
    assert compat.iso_volume(iso) == (True, os.path.getsize(iso))
    raw = str(tmp_path / 'disk.raw')
    with open(raw, 'wb') as f:
        f.truncate(MiB)
    assert compat.iso_volume(raw) == (False, None)


def test_iso_without_iso_inspector(monkeypatch, tmp_path):
    # Glance 26's inspector sees an ISO as raw.
    tree = tmp_path / 'tree'
    tree.mkdir()
    (tree / 'file').write_bytes(os.urandom(64 * 1024))
    iso = str(tmp_path / 'disk.iso')
    images.run('xorriso', '-as', 'mkisofs', '-quiet', '-o', iso, str(tree))
    monkeypatch.setattr(compat, 'HAS_ISO_INSPECTOR', False)
    monkeypatch.setattr(compat, 'detect_file_formats',
                        lambda path: [compat._fi.ALL_FORMATS['raw']()])
    info = inspection.inspect_image(iso, 'iso', 1 << 40)
    size = os.path.getsize(iso)
    assert info == inspection.ImageInfo('iso', size, size, None, size)
    with pytest.raises(inspection.errors.InvalidImage,
                       match='but is an ISO image'):
        inspection.inspect_image(iso, 'raw', 1 << 40)


# --- plugin entry -----------------------------------------------------------


class _Wrapper(object):
    image_id = 'image'


@pytest.fixture
def rbd_backends():
    cfg.CONF.set_override('enabled_backends',
                          {'ceph': 'rbd', 'ceph2': 'rbd', 'local': 'file'})
    yield
    cfg.CONF.clear_override('enabled_backends')


def test_flow_refuses_rbd_stores_when_something_is_missing(
        monkeypatch, rbd_backends):
    monkeypatch.setattr(compat, '_PROBLEMS', [('Python module nbd', 'x')])
    backend = ['ceph', 'local']
    flow = plugin.get_flow(task_id='t1', task_type='api_image_import',
                           backend=backend, action_wrapper=_Wrapper())
    (task,) = list(flow)
    assert isinstance(task, plugin._Refuse)
    assert task.stores == ['ceph', 'local']
    assert backend == ['ceph', 'local']
    with pytest.raises(compat.UploadException,
                       match='missing: Python module nbd'):
        task.execute('file:///nonexistent/staging/image')


def test_flow_without_rbd_store_is_empty_when_something_is_missing(
        monkeypatch, rbd_backends):
    monkeypatch.setattr(compat, '_PROBLEMS', [('Python module nbd', 'x')])
    flow = plugin.get_flow(task_id='t2', task_type='api_image_import',
                           backend=['local'], action_wrapper=_Wrapper())
    assert list(flow) == []


def test_stores_taken_again_on_retry(rbd_backends):
    backend = ['ceph', 'local', 'ceph2']
    assert plugin._take_rbd_stores('t3', backend) == ['ceph', 'ceph2']
    assert backend == ['local']
    # Glance 33's retry hands over the list already shortened.
    assert plugin._take_rbd_stores('t3', backend) == ['ceph', 'ceph2']
    assert backend == ['local']
    # Another task has its own.
    assert plugin._take_rbd_stores('t4', ['local']) == []


def test_package_imports_without_glance(tmp_path):
    # A host where Glance (or any internal) is missing still loads the
    # plugin, so it can fail imports loudly instead of being dropped.
    code = ('import sys; sys.modules["glance"] = None; '
            'from glance_sparse_import import plugin, glance_compat; '
            'print(glance_compat.problems())')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True,
                         text=True, check=True).stdout
    assert 'glance.common.exception' in out
    assert 'glance.async_.flows.api_image_import' in out


def test_unexpected_error_building_the_flow_fails_the_import(
        monkeypatch, rbd_backends):
    def broken(name):
        raise AttributeError("'Store' object has no attribute 'pool'")

    monkeypatch.setattr(plugin.rbd_stores, 'rbd_store', broken)
    # As where nothing is missing (not so on another Python's bindings).
    monkeypatch.setattr(compat, '_PROBLEMS', [])
    backend = ['ceph', 'local']
    flow = plugin.get_flow(task_id='t5', task_type='api_image_import',
                           backend=backend, action_wrapper=_Wrapper())
    (task,) = list(flow)
    assert isinstance(task, plugin._Refuse)
    assert sorted(task.stores) == ['ceph', 'local']
    with pytest.raises(compat.UploadException,
                       match="missing: a flow it can build "
                             r"\(AttributeError: 'Store' object has no "):
        task.execute('file:///nonexistent/staging/image')


def test_unchecked_conversion_first_fails_the_import(
        monkeypatch, rbd_backends):
    # Glance 22.1.1: image_conversion before ours converts a hostile qcow2
    # unchecked; the import fails with the list to use instead.
    monkeypatch.setattr(compat, '_PROBLEMS', [])
    monkeypatch.setattr(compat, 'conversion_checks_images', lambda: False)
    monkeypatch.setattr(plugin.plugin_order, 'configured',
                        lambda: plugin.plugin_order.split(
                            ['image_conversion', 'sparse_rbd_import']))
    backend = ['ceph', 'local']
    flow = plugin.get_flow(task_id='t7', task_type='api_image_import',
                           backend=backend, action_wrapper=_Wrapper())
    (task,) = list(flow)
    assert isinstance(task, plugin._Refuse)
    assert task.stores == ['ceph', 'local']
    with pytest.raises(compat.UploadException,
                       match=r"missing: a safe plugin order: .* list "
                             r"sparse_rbd_import before image_conversion"):
        task.execute('file:///nonexistent/staging/image')
