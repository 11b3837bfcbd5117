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

"""plugin_order: the plugin list split around ours, and what it costs.

The reopening of an active image is tried on Glance's own domain image,
wrapped in its own ``_ImportActions``, as a revert meets it.
"""

import logging

import pytest

from glance_sparse_import import glance_image
from glance_sparse_import import plugin_order
from glance_sparse_import.tests.testbed import series

OURS = 'sparse_rbd_import'


@pytest.mark.parametrize('plugins,before,after,stage_raw', [
    series.core([OURS, 'image_conversion'], [], ['image_conversion'], True),
    (['image_conversion', OURS], ['image_conversion'], [], False),
    (['image_decompression', OURS, 'image_conversion'],
     ['image_decompression'], ['image_conversion'], True),
    ([OURS, 'inject_image_metadata'], [], ['inject_image_metadata'], False),
    (['inject_image_metadata', OURS, 'no_op'], ['inject_image_metadata'],
     ['no_op'], False),
    ([OURS, 'some_site_plugin'], [], ['some_site_plugin'], True),
    ([OURS], [], [], False),
    (['image_conversion'], [], [], False),
])
def test_split(plugins, before, after, stage_raw):
    order = plugin_order.split(plugins)
    assert order.before == before
    assert order.after == after
    assert order.stage_raw is stage_raw


@pytest.mark.parametrize('plugins,recommended', [
    (['image_conversion', OURS], [OURS, 'image_conversion']),
    (['image_decompression', 'image_conversion', OURS,
      'inject_image_metadata'],
     ['image_decompression', OURS, 'image_conversion',
      'inject_image_metadata']),
    (['inject_image_metadata', 'image_conversion', OURS],
     ['inject_image_metadata', OURS, 'image_conversion']),
    ([OURS, 'image_conversion'], [OURS, 'image_conversion']),
    (['image_decompression'], ['image_decompression', OURS]),
])
def test_recommended(plugins, recommended):
    assert plugin_order.split(plugins).recommended() == recommended


@pytest.fixture
def fresh_warning():
    plugin_order._reset_warning()
    yield
    plugin_order._reset_warning()


def test_warns_once_naming_the_fix(fresh_warning, caplog):
    order = plugin_order.split(['image_conversion', OURS])
    with caplog.at_level(logging.WARNING):
        assert plugin_order.warn_once(order)
        assert not plugin_order.warn_once(order)
    [record] = [r for r in caplog.records
                if 'before sparse_rbd_import' in r.getMessage()]
    assert record.levelno == logging.WARNING
    assert ("image_import_plugins = ['sparse_rbd_import', "
            "'image_conversion']") in record.getMessage()


@pytest.mark.parametrize('plugins', [
    [OURS, 'image_conversion'], ['image_decompression', OURS], [OURS]])
def test_no_warning_when_nothing_converts_first(fresh_warning, caplog,
                                                plugins):
    with caplog.at_level(logging.WARNING):
        assert not plugin_order.warn_once(plugin_order.split(plugins))
    assert not caplog.records


def test_configured_reads_glance_option(monkeypatch):
    from glance_sparse_import import glance_compat
    monkeypatch.setattr(glance_compat, 'configured_import_plugins',
                        lambda: ['image_decompression', OURS])
    assert plugin_order.configured().before == ['image_decompression']

    def unreadable():
        raise ImportError('no glance')
    monkeypatch.setattr(glance_compat, 'configured_import_plugins',
                        unreadable)
    assert plugin_order.configured() == plugin_order.split([OURS])


@pytest.mark.parametrize('plugins,output_format,aside', [
    ([OURS, 'image_conversion'], 'qcow2', True),
    (['image_conversion', OURS], 'vmdk', True),
    ([OURS, 'image_conversion'], 'raw', False),
    ([OURS], 'qcow2', False),
    ([OURS, 'image_conversion'], ImportError('no glance'), False),
])
def test_stand_aside_when_conversion_is_not_to_raw(
        fresh_warning, caplog, monkeypatch, plugins, output_format, aside):
    from glance_sparse_import import glance_compat

    def output():
        if isinstance(output_format, Exception):
            raise output_format
        return output_format
    monkeypatch.setattr(glance_compat, 'configured_import_plugins',
                        lambda: plugins)
    monkeypatch.setattr(glance_compat, 'conversion_output_format', output)
    with caplog.at_level(logging.WARNING):
        assert plugin_order.stand_aside() is aside
        assert plugin_order.stand_aside() is aside
    warned = [r for r in caplog.records if 'stands aside' in r.getMessage()]
    assert len(warned) == (1 if aside else 0)
    if aside:
        assert 'output_format = raw' in warned[0].getMessage()


def _glance_action(status):
    """An ``_ImportActions`` over a proxied Glance domain image."""
    from glance.async_.flows import api_image_import
    from glance import domain
    from glance.domain import proxy

    image = domain.ImageFactory().new_image(
        image_id='00000000-0000-4000-8000-000000000000',
        disk_format='raw', container_format='bare')
    image.status = 'importing'
    image.size = image.virtual_size = 1024
    if status == 'active':
        image.status = 'active'
    return api_image_import._ImportActions(proxy.Image(image)), image


@pytest.mark.series_core
@pytest.mark.parametrize('status', ['active', 'importing'])
def test_set_queued(status):
    action, image = _glance_action(status)
    glance_image.set_queued(action)
    assert action.image_status == image.status == 'queued'
    # As Glance's own move to queued.
    assert image.size is None and image.virtual_size is None


@pytest.mark.series_core
def test_active_to_queued_refused_by_glance_itself():
    # What the revert met before: proof the domain model still refuses it.
    action, _image = _glance_action('active')
    from glance.common import exception
    with pytest.raises(exception.InvalidImageStatusTransition):
        action.set_image_attribute(status='queued')


@pytest.mark.parametrize('checks', [True, None])
def test_conversion_first_allowed_where_it_checks(monkeypatch, checks):
    monkeypatch.setattr(plugin_order.compat, 'conversion_checks_images',
                        lambda: checks)
    order = plugin_order.split(['image_conversion', OURS])
    assert plugin_order.unchecked_conversion(order) is None


@pytest.mark.parametrize('plugins,refused', [
    (['image_conversion', OURS], True),
    (['inject_image_metadata', 'image_conversion', OURS], True),
    ([OURS, 'image_conversion'], False),
    (['image_decompression', OURS, 'image_conversion'], False),
])
def test_conversion_first_refused_where_it_does_not_check(
        monkeypatch, plugins, refused):
    # Glance 22.1.1's image_conversion converts a qcow2 with a backing
    # file: after it, ours would see only raw output.
    monkeypatch.setattr(plugin_order.compat, 'conversion_checks_images',
                        lambda: False)
    why = plugin_order.unchecked_conversion(plugin_order.split(plugins))
    assert (why is not None) is refused
    if refused:
        assert why.startswith('a safe plugin order: ')
        assert 'list sparse_rbd_import before image_conversion' in why
        assert repr(plugin_order.split(plugins).recommended()) in why
