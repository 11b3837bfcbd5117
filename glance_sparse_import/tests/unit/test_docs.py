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

"""The documentation against the code it describes.

Every error message the plugin raises must be in the troubleshooting guide,
and every option of the command in its page, so that a new message or
option without documentation fails here.
"""

import ast
import os
import re

import pytest

from glance_sparse_import.cmd import cli

PACKAGE = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
DOC = os.path.join(os.path.dirname(PACKAGE), 'doc', 'source')


@pytest.fixture(autouse=True)
def _doc_tree():
    # The tests run from a checkout: a missing doc tree is a broken one.
    assert os.path.isdir(DOC), 'no doc/source next to the package'


# Calls whose first argument ends up in a task message.
_ERROR_CALLS = {'InvalidImage', 'SourceError', 'StoreError', '_fail',
                'UploadException', 'QuotaExceeded', 'SignatureError'}


def _read(*parts):
    with open(os.path.join(DOC, *parts)) as f:
        return f.read()


def _template(node):
    """The constant text of a message argument, or None."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
        return _template(node.left)
    return None


def _messages():
    found = set()
    for root, dirs, files in os.walk(PACKAGE):
        dirs[:] = [d for d in dirs if d not in ('tests', '__pycache__')]
        for name in files:
            if not name.endswith('.py'):
                continue
            with open(os.path.join(root, name)) as f:
                tree = ast.parse(f.read())
            for node in ast.walk(tree):
                if not (isinstance(node, ast.Call) and node.args):
                    continue
                func = node.func
                called = getattr(func, 'attr', getattr(func, 'id', None))
                if called in _ERROR_CALLS:
                    text = _template(node.args[0])
                    if text:
                        found.add(text)
    return found


def test_messages_found():
    messages = _messages()
    assert 'Image is empty' in messages
    assert 'cannot connect to the Ceph cluster' in messages
    assert 'Sparse RBD import failed: %s' in messages


def test_every_message_is_documented():
    text = _read('admin', 'troubleshooting.rst')
    flat = re.sub(r'\s+', ' ', text)
    missing = []
    for template in sorted(_messages()):
        literal = [p.strip() for p in re.split(r'%\(?\w*\)?[sdr]', template)]
        if not all(p in flat for p in literal if p):
            missing.append(template)
    assert not missing, 'not in troubleshooting.rst: %s' % missing


def test_every_command_option_is_documented():
    text = _read('cli', 'index.rst')
    parser = cli.build_parser()
    parsers = [parser] + [
        sub for action in parser._actions
        if hasattr(action, 'choices') and isinstance(action.choices, dict)
        for sub in action.choices.values()]
    for p in parsers:
        for action in p._actions:
            for option in action.option_strings:
                if option in ('-h', '--help'):
                    continue
                assert '``%s' % option in text, option
