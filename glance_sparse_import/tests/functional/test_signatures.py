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

"""Signed images, through Glance's real import flow and real Ceph.

The image is signed as the Glance documentation shows (``openssl dgst
-sign`` with RSA-PSS); the certificate is fetched by cursive through
castellan from a key manager of the test bed that keeps it in a directory,
and cursive verifies the signature over the staged data. A signature that
does not verify must fail the import before anything is written to Ceph.
"""

import base64
import os
import uuid

import pytest

from glance_sparse_import.tests.functional import glance_flow
from glance_sparse_import.tests.testbed import key_manager
from glance_sparse_import.tests.testbed import procs

MiB = 1024 ** 2
PREFIX = 'Sparse RBD import failed: '
BACKEND = ('glance_sparse_import.tests.testbed.key_manager.'
           'DirectoryKeyManager')


@pytest.fixture(scope='module')
def signer(tmp_path_factory):
    """(sign(path) -> base64 signature, certificate UUID)."""
    work = str(tmp_path_factory.mktemp('signer'))
    key = os.path.join(work, 'key.pem')
    cert = os.path.join(work, 'cert.pem')
    der = os.path.join(work, 'cert.der')
    procs.run(['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes',
               '-keyout', key, '-out', cert, '-subj', '/CN=signer',
               '-days', '1'])
    procs.run(['openssl', 'x509', '-in', cert, '-outform', 'der', '-out',
               der])
    certs = os.path.join(work, 'certificates')
    os.mkdir(certs)
    with open(der, 'rb') as f:
        cert_uuid = key_manager.store_certificate(certs, f.read())

    def sign(path):
        sig = path + '.sig'
        procs.run(['openssl', 'dgst', '-sha256', '-sign', key, '-sigopt',
                   'rsa_padding_mode:pss', '-out', sig, path])
        with open(sig, 'rb') as f:
            return base64.b64encode(f.read()).decode()

    return sign, cert_uuid, certs


@pytest.fixture(scope='module')
def flow(ceph_cluster, signer, tmp_path_factory):
    return glance_flow.GlanceFlow(
        str(tmp_path_factory.mktemp('signatures')), {'ceph': ceph_cluster},
        'ceph', plugins=['sparse_rbd_import'],
        extra_conf={'key_manager': {'backend': BACKEND},
                    'testbed_key_manager': {'directory': signer[2]}})


def _props(signature, cert_uuid, hash_method='SHA-256'):
    props = {'img_signature': signature,
             'img_signature_hash_method': hash_method,
             'img_signature_key_type': 'RSA-PSS',
             'img_signature_certificate_uuid': cert_uuid}
    return ['--property=%s=%s' % kv for kv in props.items()]


def _import(flow, path, fmt, props):
    log_start = len(flow.log())
    result = flow.run_import(fmt, file=path, stores=['ceph'],
                             extra_args=props)
    return result, flow.log()[log_start:]


@pytest.mark.parametrize('fmt', ['qcow2', 'raw'])
def test_valid_signature(flow, ceph_cluster, image_builder, signer, fmt):
    sign, cert_uuid, _certs = signer
    if fmt == 'qcow2':
        path = image_builder.qcow2(64 * MiB, 8 * MiB)
    else:
        path = image_builder.ext4_raw(64 * MiB, 8 * MiB)
    result, log = _import(flow, path, fmt, _props(sign(path), cert_uuid))
    image, task = result['image'], result['task']
    try:
        assert task['status'] == 'success', task
        assert image['status'] == 'active'
        assert image['id'] in ceph_cluster.rbd_images()
        assert 'Successfully verified signature for image %s' % (
            image['id']) in log
    finally:
        ceph_cluster.purge_image(image['id'])


def _tampered(builder, work, sign, cert_uuid):
    path = os.path.join(work, 'tampered.raw')
    with open(builder.ext4_raw(64 * MiB, 8 * MiB), 'rb') as f:
        data = bytearray(f.read())
    with open(path, 'wb') as f:
        f.write(data)
    signature = sign(path)
    data[2 * MiB] ^= 1
    with open(path, 'wb') as f:
        f.write(data)
    return path, _props(signature, cert_uuid), 'Signature verification failed'


def _unknown_certificate(builder, work, sign, cert_uuid):
    path = builder.qcow2(64 * MiB, 8 * MiB)
    missing = str(uuid.uuid4())
    return (path, _props(sign(path), missing),
            'Cannot verify the signature: Signature verification for the '
            'image failed: Certificate not found with ID: %s' % missing)


def _bad_hash_method(builder, work, sign, cert_uuid):
    path = builder.qcow2(64 * MiB, 8 * MiB)
    return (path, _props(sign(path), cert_uuid, 'MD5'),
            'Invalid signature hash method: MD5')


def _not_base64(builder, work, sign, cert_uuid):
    path = builder.qcow2(64 * MiB, 8 * MiB)
    return (path, _props('not*base64', cert_uuid),
            'The signature data was not properly encoded using base64')


@pytest.mark.parametrize('maker', [_tampered, _unknown_certificate,
                                   _bad_hash_method, _not_base64],
                         ids=lambda m: m.__name__.strip('_'))
def test_refused_signature(flow, ceph_cluster, image_builder, signer,
                           scratch_dir, maker):
    sign, cert_uuid, _certs = signer
    path, props, expected = maker(image_builder, scratch_dir, sign,
                                  cert_uuid)
    fmt = 'raw' if path.endswith('.raw') else 'qcow2'
    result, log = _import(flow, path, fmt, props)
    image, task = result['image'], result['task']
    assert task['status'] == 'failure', task
    assert task['message'].startswith(PREFIX), task['message']
    assert expected in task['message']
    assert image['status'] == 'queued'
    assert image['locations'] == [] and image['checksum'] is None
    props = image['extra_properties']
    assert props['os_glance_failed_import'] == 'ceph'
    assert props.get('os_glance_importing_to_stores', '') == ''
    assert image['id'] not in ceph_cluster.rbd_images()
    # Refused before qemu or Ceph saw the data.
    assert 'Created RBD image %s' % image['id'] not in log
    assert not os.path.exists(os.path.join(flow.staging_dir, image['id']))
