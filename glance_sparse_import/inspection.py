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

"""Safety checks on the staged data.

The same checks Glance's ``image_conversion`` plugin makes, in the same
order: the format inspector and its safety checks, the claimed format
against the detected one, then ``qemu-img info`` under process limits (no
backing file, no data-file, an allowed VMDK create-type). They run before
qemu-nbd ever opens the file. ``checked_output`` repeats the inspection on
the converted raw stream, as Glance does on the converted file.

Error messages reach the image owner; they never name host paths. The
details go to the log.
"""

import collections
import json
import os
import re
import signal
import sys
import tempfile

from oslo_concurrency import processutils
from oslo_config import cfg
from oslo_log import log as logging
from oslo_utils import units

from glance_sparse_import import errors
from glance_sparse_import import glance_compat as compat
from glance_sparse_import import vmdk

LOG = logging.getLogger(__name__)

CONF = cfg.CONF

ImageInfo = collections.namedtuple(
    'ImageInfo', 'format virtual_size actual_size qemu_format size')
ImageInfo.__doc__ = """What the checks learnt about a staged image.

format: the disk format, as Glance names it ('raw' for a GPT disk).
virtual_size: the virtual size Glance records for the image, or None where
    stock Glance records none (an ISO without a primary volume descriptor).
actual_size: the size of the staged file.
qemu_format: the qemu driver that reads the file, or None when the file is
    read as it is (raw and iso).
size: the length of the raw disk the source yields, which Glance records as
    the image size: the file size for raw and iso, else the virtual size.
    An ISO's volume size may differ from its file size.
"""

# qemu-img check walks every table of the image: more CPU than info.
QEMU_CHECK_PROC_LIMITS = processutils.ProcessLimits(
    cpu_time=30, address_space=units.Gi)

# Repairing a dirty qcow2's refcounts in a throwaway overlay: qemu writes
# only metadata there, a little of it.
QEMU_REPAIR_PROC_LIMITS = processutils.ProcessLimits(
    cpu_time=30, address_space=units.Gi, file_size=units.Gi)

# glibc reserves 64 MiB of address space for each malloc arena (128 MiB
# while it aligns one) and makes one per thread up to eight per core. Under
# a 1 GiB address space limit, qemu spawning more I/O threads on a busy host
# then fails with "qemu_thread_create: Resource temporarily unavailable" on
# a valid image. With two arenas, qemu's pool of at most 64 I/O threads
# (8 MiB of stack each) fits in the limit beside the ~190 MiB qemu-img
# maps: the limit bounds what the image costs.
MALLOC_ARENA_MAX = '2'


def qemu_environment():
    """The environment qemu-img and qemu-nbd run in: ours, arenas bounded."""
    return dict(os.environ, MALLOC_ARENA_MAX=MALLOC_ARENA_MAX)


# Formats whose staged file is the raw disk itself.
RAW_FORMATS = frozenset(('raw', 'iso'))

# Glance disk format -> qemu driver. Glance calls qemu's 'vpc' 'vhd'. The
# format inspector bans QED; reading LUKS needs a key.
QEMU_FORMATS = {
    'qcow2': 'qcow2',
    'vdi': 'vdi',
    'vhd': 'vpc',
    'vhdx': 'vhdx',
    'vmdk': 'vmdk',
}

# Zero runs are shown to the output inspector in pieces of this size.
_ZEROS = bytes(units.Mi)

# A hybrid ISO (an MBR or GPT in the ISO's system area, as Linux installers
# ship) matches both inspectors; Glance's upload path stores it as an ISO.
_HYBRID_ISO = frozenset(('iso', 'gpt'))

# What qemu's reason may say at most in a task message, in characters.
_REASON_LENGTH = 300
_QUOTED_PATH = re.compile(r" ?'[^']*/[^']*'")
_BARE_PATH = re.compile(r'(?<![\w.])/[\w.,+@%=:-]+(?:/[\w.,+@%=:-]*)*')
# qemu's own advice for these names the staged file; ours names none.
_QEMU_HINTS = (
    ('log that needs to be replayed',
     "; replay the log on a copy of the disk with 'qemu-img check -r all' "
     'or export the disk again, then upload the result'),
)


def inspect_image(path, claimed_format, max_virtual_size, python_exec=None):
    """Check the staged image at path and describe it.

    :param claimed_format: the image's disk_format
    :param max_virtual_size: largest virtual size allowed, in bytes
    :param python_exec: interpreter that applies qemu-img's process limits
                        (Glance's ``[wsgi] python_interpreter``; None:
                        this one)
    :returns: ImageInfo
    :raises InvalidImage: the image is unsafe, corrupt, too large, or not
                          in the claimed format
    :raises SourceError: the file or qemu-img could not be used
    """
    # oslo.concurrency before 5 runs None as the interpreter.
    python_exec = python_exec or sys.executable
    try:
        actual_size = os.stat(path).st_size
    except OSError as e:
        LOG.error('Cannot stat staged image: %s', e)
        raise errors.SourceError('The staged image cannot be read')
    if actual_size == 0:
        raise errors.InvalidImage('Image is empty')

    inspector = _inspect_file(path)
    detected = _format_name(inspector)
    iso_size = None
    if detected == 'raw' and not compat.HAS_ISO_INSPECTOR:
        # Glance 26's inspector knows no ISO and sees one as raw; the
        # volume size is what later inspectors report.
        is_iso, iso_size = _iso_volume(path)
        if is_iso:
            detected = 'iso'
            inspector = None
    if detected == 'iso':
        if claimed_format != 'iso':
            LOG.error('Image claimed to be %s format but format '
                      'inspection found: ISO', claimed_format)
            raise errors.InvalidImage(
                'Image claimed to be %s but is an ISO image' % claimed_format)
    elif detected != claimed_format:
        LOG.error('Image claimed to be %s format failed format '
                  'inspection, found %s', claimed_format, detected)
        why = None
        if claimed_format == 'vmdk' and detected == 'raw':
            why = _vmdk_explanation(path)
        raise errors.InvalidImage(
            why or 'Image claimed to be %s but its content is %s'
            % (claimed_format, detected))

    if detected in RAW_FORMATS:
        # What Glance's ImageProxy.set_data records for this upload: the
        # stream length for raw, the inspector's volume size for an ISO.
        if detected == 'raw':
            virtual_size = actual_size
        else:
            virtual_size = (iso_size if inspector is None else
                            inspector.virtual_size or None)
        _check_size(max(actual_size, virtual_size or 0), max_virtual_size)
        return ImageInfo(detected, virtual_size, actual_size, None,
                         actual_size)

    qemu_format = QEMU_FORMATS.get(detected)
    if qemu_format is None:
        raise errors.InvalidImage(
            'Disk format %s cannot be imported' % detected)
    # Refuse an absurd size before qemu allocates tables for it.
    _check_size(inspector.virtual_size, max_virtual_size)

    metadata = _qemu_img_info(path, qemu_format, python_exec)
    _check_qemu_metadata(metadata, qemu_format)
    if qemu_format == 'qcow2' and metadata.get('dirty-flag'):
        _check_dirty_qcow2(path, python_exec)
    else:
        _qemu_img_check(path, qemu_format, python_exec)
    virtual_size = metadata.get('virtual-size')
    if not isinstance(virtual_size, int) or virtual_size <= 0:
        raise errors.InvalidImage('Image has no valid virtual size')
    _check_size(virtual_size, max_virtual_size)
    return ImageInfo(detected, virtual_size, actual_size, qemu_format,
                     virtual_size)


def max_virtual_size(conf):
    """The virtual size cap configured for the plugin.

    ``[sparse_rbd_import] max_virtual_size``, or Glance's ``image_size_cap``
    when that is 0.
    """
    return conf.sparse_rbd_import.max_virtual_size or conf.image_size_cap


def checked_output(chunks):
    """Pass chunks through, checking the raw stream they make is plain raw.

    Glance inspects the output of ``qemu-img convert`` and rejects it when
    it is anything but raw (or a GPT disk): a qcow2 hiding a VMDK or a
    qcow2 would otherwise be stored as a raw disk that some later qemu
    probes as that format. Zero runs are inspected as zeros. The stream is
    inspected only until the inspectors agree, which for a plain disk is
    its first 256 KiB; the error, if any, is raised from the iteration.
    """
    detector = compat.StreamDetector()
    deciding = True
    for chunk in chunks:
        if deciding:
            if chunk.data is None:
                for piece in _zero_pieces(chunk.length):
                    detector.eat(piece)
                    if detector.decided:
                        break
            else:
                detector.eat(chunk.data)
            if detector.decided:
                deciding = False
                _check_output_format(detector)
        yield chunk
    if deciding:
        detector.close()
        _check_output_format(detector)


def _zero_pieces(length):
    view = memoryview(_ZEROS)
    while length > 0:
        n = min(length, len(_ZEROS))
        yield view[:n]
        length -= n


def _check_output_format(detector):
    inspector = _checked(detector.result)
    if _format_name(inspector) != 'raw':
        LOG.error('Image detected as %s after conversion to raw', inspector)
        raise errors.InvalidImage('Converted image in unexpected format')


def _vmdk_explanation(path):
    try:
        return vmdk.explain(path)
    except OSError as e:
        LOG.error('Cannot read staged image: %s', e)
        raise errors.SourceError('The staged image cannot be read')


def _inspect_file(path):
    return _checked(lambda: _detect_file_format(path))


def _detect_file_format(path):
    """The one format of the file, or an ISO for a hybrid ISO.

    As ``format_inspector.detect_file_format``, except that an ISO with an
    MBR or GPT in its system area is an ISO, as Glance's upload path has
    it. Any other combination of formats raises ImageFormatError.
    """
    formats = compat.detect_file_formats(path)
    matches = {str(i): i for i in formats}
    if matches.keys() == _HYBRID_ISO:
        LOG.info('Image is a hybrid ISO (an ISO 9660 with a partition '
                 'table in its system area): inspected as an ISO')
        return matches['iso']
    if len(formats) > 1:
        raise compat.ImageFormatError('Multiple formats detected: %s' %
                                      ','.join(sorted(matches)))
    return formats[0]


def _checked(detect):
    """Run detect() and the safety checks as Glance's _inspect_path does."""
    try:
        inspector = detect()
        compat.safety_check(inspector)
    except compat.UnsafeImage as e:
        fatal = e.failures.keys() - set(compat.gpt_nonfatal_checks())
        if compat.inspector_name(inspector) == 'gpt' and not fatal:
            LOG.warning('Non-fatal %s', e)
        else:
            LOG.error('%s %s', inspector, e)
            raise errors.InvalidImage('Image has disallowed configuration')
    except compat.ImageFormatError as e:
        LOG.error('Image failed format inspection: %s', e)
        raise errors.InvalidImage('Image format detection failed')
    except errors.SparseImportError:
        raise
    except Exception as e:
        LOG.exception('Unknown error inspecting image format: %s', e)
        raise errors.InvalidImage('Unable to inspect image')
    return inspector


def _iso_volume(path):
    try:
        return compat.iso_volume(path)
    except OSError as e:
        LOG.error('Cannot read staged image: %s', e)
        raise errors.SourceError('The staged image cannot be read')


def _format_name(inspector):
    name = str(inspector)
    # Glance treats a GPT disk as raw, for compatibility.
    return 'raw' if name == 'gpt' else name


def _check_size(size, limit):
    if size > limit:
        LOG.error('Image virtual size %d exceeds the limit %d', size, limit)
        raise errors.InvalidImage(
            'Image virtual size %d exceeds the limit of %d bytes'
            % (size, limit))


def _qemu_img_info(path, qemu_format, python_exec):
    try:
        stdout, stderr = processutils.execute(
            'qemu-img', 'info', '-f', qemu_format, '--output=json', path,
            prlimit=compat.QEMU_IMG_PROC_LIMITS,
            python_exec=python_exec, env_variables=qemu_environment())
    except processutils.ProcessExecutionError as e:
        LOG.error('qemu-img info failed (exit %s): %s', e.exit_code,
                  e.stderr)
        _refuse_if_stopped('info', e, path)
        raise errors.InvalidImage('qemu-img cannot read the image: %s'
                                  % qemu_reason(e.stderr or '', path))
    except OSError as e:
        LOG.error('Cannot run qemu-img info: %s', e)
        raise errors.SourceError('Cannot run qemu-img to inspect the image')
    if stderr:
        LOG.error('qemu-img info failed: %s', stderr)
        raise errors.InvalidImage('qemu-img cannot read the image: %s'
                                  % qemu_reason(stderr, path))
    try:
        metadata = json.loads(stdout)
    except ValueError:
        LOG.error('qemu-img info printed invalid JSON: %r', stdout[:200])
        raise errors.InvalidImage('qemu-img cannot read the image')
    if not isinstance(metadata, dict):
        raise errors.InvalidImage('qemu-img cannot read the image')
    return metadata


def _qemu_img_check(path, qemu_format, python_exec):
    """Refuse images whose metadata qemu-img check finds corrupt.

    Read-only qemu serves a cluster mapped past the end of the file, or
    shared by two tables, as data without complaint, so a corrupt image
    would import as silently wrong bytes. The check reads only metadata.
    Leaked clusters (exit 3) are harmless for reading; 63 means the driver
    has no check.

    :raises InvalidImage: qemu-img check found corruption
    :raises SourceError: qemu-img could not be run
    """
    _run_check(path, ['-f', qemu_format, path], QEMU_CHECK_PROC_LIMITS,
               python_exec, [0, 3, 63])


def _check_dirty_qcow2(path, python_exec):
    """Check a qcow2 whose dirty bit is set, as qemu would repair it.

    With ``lazy_refcounts`` qemu updates refcounts lazily and sets the
    dirty bit; after a crash the refcounts on disk lag the tables, which
    ``qemu-img check`` calls corruption. Read-only qemu (as stock Glance's
    convert) never uses refcounts and reads such an image intact; read-write
    qemu repairs them on open. So the refcounts are rebuilt here as qemu
    would on open, but in a throwaway qcow2 overlay of the staged file,
    which is never written; what cannot be repaired (tables pointing past
    the end of the file, clusters used twice) fails as on a clean image.

    :raises InvalidImage: the image is corrupt beyond its refcounts
    :raises SourceError: qemu-img could not be run
    """
    with tempfile.TemporaryDirectory(prefix='sparse-import-check-') as tmp:
        overlay = os.path.join(tmp, 'overlay.qcow2')
        try:
            # The staged file as the overlay's raw backing: read, never
            # probed, never written.
            processutils.execute(
                'qemu-img', 'create', '-q', '-f', 'qcow2', '-F', 'raw',
                '-b', os.path.abspath(path), overlay,
                prlimit=compat.QEMU_IMG_PROC_LIMITS,
                python_exec=python_exec, env_variables=qemu_environment())
        except (processutils.ProcessExecutionError, OSError) as e:
            LOG.error('Cannot make an overlay to check the image: %s', e)
            raise errors.SourceError(
                'Cannot run qemu-img to inspect the image')
        LOG.warning('Image has the qcow2 dirty bit set (not closed cleanly '
                    'with lazy refcounts): checking it with its refcounts '
                    'rebuilt, as qemu would on opening it')
        opts = 'driver=qcow2,file.driver=qcow2,file.file.filename=%s' % (
            overlay.replace(',', ',,'))
        _run_check(path, ['-r', 'all', '--image-opts', opts],
                   QEMU_REPAIR_PROC_LIMITS, python_exec, [0, 3])


def _run_check(path, args, limits, python_exec, ok_codes):
    try:
        processutils.execute(
            'qemu-img', 'check', '--output=json', *args,
            prlimit=limits, python_exec=python_exec,
            env_variables=qemu_environment(), check_exit_code=ok_codes)
    except processutils.ProcessExecutionError as e:
        output = e.stderr or e.stdout or ''
        LOG.error('qemu-img check refused the image (exit %s): %s',
                  e.exit_code, (e.stdout or '') + (e.stderr or ''))
        _refuse_if_stopped('check', e, path)
        raise errors.InvalidImage('Image metadata is corrupt: %s'
                                  % qemu_reason(output, path))
    except OSError as e:
        LOG.error('Cannot run qemu-img check: %s', e)
        raise errors.SourceError('Cannot run qemu-img to inspect the image')


def _refuse_if_stopped(command, error, path):
    """Refuse the image, naming the signal, if one stopped qemu-img.

    qemu aborts when its process limits deny it memory or a thread, and the
    kernel kills it past its CPU time: whatever it printed before (a
    partial list of errors, say) is not its verdict, its last line is the
    cause.

    :raises InvalidImage: a signal ended qemu-img
    """
    if error.exit_code is None or error.exit_code >= 0:
        return
    try:
        name = signal.Signals(-error.exit_code).name
    except ValueError:
        name = 'signal %d' % -error.exit_code
    lines = [line for line in (error.stderr or '').splitlines()
             if line.strip()]
    raise errors.InvalidImage(
        'qemu-img %s was stopped by %s (its process limits, or a crash): %s'
        % (command, name, qemu_reason(lines[-1] if lines else '', path)))


def qemu_reason(output, path):
    """qemu's reason for refusing an image, fit for the image owner.

    The first lines qemu printed, without host paths (the staged file's or
    any other) and with advice that names none.

    :param output: what qemu printed on stderr
    :param path: the staged file qemu was given
    :returns: text of at most ``_REASON_LENGTH`` characters
    """
    text = output
    for name in {path, os.path.abspath(path), os.path.realpath(path)}:
        text = text.replace("'%s'" % name, '\0').replace(name, '\0')
    lines = []
    for line in text.splitlines():
        line = line.strip()
        for prefix in ('qemu-img:', 'qemu-nbd:'):
            if line.startswith(prefix):
                line = line[len(prefix):].strip()
        # qemu's advice to run a command on the staged file.
        if not line or line.startswith(('To replay', 'qemu-img ')):
            continue
        # "Could not open '<staged file>': " says nothing more.
        line = line.replace('Could not open \0: ', '')
        # A quoted name holding the staged file ('json:{... path ...}').
        line = re.sub(r" ?'[^']*\0[^']*'", '', line)
        line = re.sub(r' *\0', '', line)
        lines.append(line)
    errors_seen = [line for line in lines if line.startswith('ERROR')]
    if errors_seen:
        # qemu-img check prints one line per bad cluster.
        lines = errors_seen[:1] + (
            ['(%d errors)' % len(errors_seen)] if len(errors_seen) > 1
            else [])
    reason = ' '.join(lines[:3]) or 'no reason given'
    reason = _QUOTED_PATH.sub('', reason)
    reason = _BARE_PATH.sub('<path>', reason)
    if len(reason) > _REASON_LENGTH:
        reason = reason[:_REASON_LENGTH - 3] + '...'
    for symptom, hint in _QEMU_HINTS:
        if symptom in reason:
            reason = reason.rstrip('.') + hint
    return reason


def _check_qemu_metadata(metadata, qemu_format):
    if metadata.get('format') != qemu_format:
        LOG.error('Image claiming to be %s reported as %s by qemu-img',
                  qemu_format, metadata.get('format', 'unknown'))
        raise errors.InvalidImage('Image metadata disagrees about format')

    if 'backing-filename' in metadata or 'full-backing-filename' in metadata:
        LOG.warning('Refusing to process image with a backing file')
        raise errors.InvalidImage(
            'Images with backing files are not allowed')

    specific = metadata.get('format-specific') or {}
    data = specific.get('data') or {}
    if data.get('data-file') is not None:
        raise errors.InvalidImage(
            'QCOW images with data-file set are not allowed')

    if qemu_format == 'vmdk':
        create_type = data.get('create-type')
        allowed = compat.vmdk_allowed_types()
        if not create_type:
            raise errors.InvalidImage('Unable to determine VMDK create-type')
        if not allowed:
            LOG.warning('Refusing to process VMDK file as '
                        'vmdk_allowed_types is empty')
            raise errors.InvalidImage(
                'Image is a VMDK, but no VMDK createType is specified')
        if create_type not in allowed:
            LOG.warning('Refusing to process VMDK file with create-type '
                        'of %r which is not in allowed set of: %s',
                        create_type, ','.join(allowed))
            raise errors.InvalidImage('Invalid VMDK create-type specified')
