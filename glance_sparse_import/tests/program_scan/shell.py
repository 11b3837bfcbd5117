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

"""Programs that shell scripts run, read by a small lexer.

The lexer knows quoting, ``$(...)`` (whose commands count too),
arithmetic, arrays, redirections, functions and the usual keywords and
builtins; ``exec``, ``env``, ``nohup`` and ``chroot`` run the program that
follows them.
"""

import re

SHELL_KEYWORDS = frozenset([
    'if', 'then', 'else', 'elif', 'fi', 'do', 'done', 'while', 'until',
    '!', '{', '}', 'function', 'time'])
SHELL_BUILTINS = frozenset([
    'cd', 'echo', 'printf', 'set', 'export', 'local', 'read', 'exit',
    'return', 'trap', 'shift', 'source', '.', '[', '[[', 'test', 'true',
    'false', 'unset', 'wait', 'kill', 'declare', 'readonly', 'eval',
    'type', ':', 'pushd', 'popd', 'break', 'continue', 'let', 'getopts',
    'umask', 'ulimit', 'mapfile', 'readarray', 'command', 'exec', 'hash',
    'pwd'])
# Words after which the next word is again a program.
SHELL_PREFIXES = frozenset(['exec', 'nohup', 'nice', 'env', 'time'])
ASSIGNMENT = re.compile(r'^[A-Za-z_][A-Za-z0-9_]*(\[[^]]*\])?\+?=')


def commands(text):
    """[(line, [words])] of the simple commands of a shell script.

    Quotes are removed from words; ``$(...)`` inside a word becomes
    ``$(...)`` literally and its commands are listed too; array
    assignments are single words.
    """
    out = []
    _Lexer(text, out).run()
    return out


class _Lexer(object):

    def __init__(self, text, out, line=1):
        self.text = text
        self.out = out
        self.pos = 0
        self.line = line

    def run(self):
        words = []
        start_line = self.line
        while True:
            word, sep = self._word()
            if word is not None:
                if not words:
                    start_line = self._word_line
                words.append(word)
            if sep is not None:
                if words:
                    self.out.append((start_line, words))
                words = []
            if sep == 'end':
                return

    def _peek(self, n=1):
        return self.text[self.pos:self.pos + n]

    def _word(self):
        """(word or None, separator or None)."""
        t = self.text
        while self.pos < len(t) and t[self.pos] in ' \t':
            self.pos += 1
        if self._peek(2) == '\\\n':
            self.pos += 2
            self.line += 1
            return None, None
        if self.pos >= len(t):
            return None, 'end'
        c = t[self.pos]
        if c == '#':
            while self.pos < len(t) and t[self.pos] != '\n':
                self.pos += 1
            return None, None
        if c in '\n;&|()':
            if c == '\n':
                self.line += 1
            self.pos += 1
            return None, c
        self._word_line = self.line
        word = []
        while self.pos < len(t):
            c = t[self.pos]
            if c == '&' and word and word[-1] in '<>':
                word.append(c)
                self.pos += 1
                continue
            array = c == '(' and word and word[-1] == '='
            if c in ' \t\n;&|()' and not array:
                if c == '(' and word and word[-1] == '$':
                    word.append(self._substitution())
                    continue
                break
            if c == '(':
                word.append(self._balanced())
            elif c == '\\':
                if self._peek(2) == '\\\n':
                    self.line += 1
                else:
                    word.append(t[self.pos + 1:self.pos + 2])
                self.pos += 2
            elif c == "'":
                end = t.index("'", self.pos + 1)
                word.append(t[self.pos + 1:end])
                self.line += t.count('\n', self.pos, end)
                self.pos = end + 1
            elif c == '"':
                self.pos += 1
                while t[self.pos] != '"':
                    if self._peek(2) == '$(':
                        self.pos += 1
                        word.append('$' + self._substitution())
                    elif t[self.pos] == '\\':
                        word.append(t[self.pos + 1])
                        self.pos += 2
                    else:
                        if t[self.pos] == '\n':
                            self.line += 1
                        word.append(t[self.pos])
                        self.pos += 1
                self.pos += 1
            else:
                word.append(c)
                self.pos += 1
        return ''.join(word), None

    def _balanced(self):
        """An array value ``(...)``: one word, comments dropped."""
        t = self.text
        depth = 0
        parts = []
        while self.pos < len(t):
            c = t[self.pos]
            if c == '#':
                while t[self.pos] != '\n':
                    self.pos += 1
                continue
            if c == '\n':
                self.line += 1
            parts.append(c)
            self.pos += 1
            depth += {'(': 1, ')': -1}.get(c, 0)
            if depth == 0:
                break
        return ''.join(parts)

    def _substitution(self):
        """Lex ``(...)`` after ``$`` as a script of its own."""
        t = self.text
        depth = 0
        start = self.pos
        quote = None
        if t.startswith('((', self.pos):
            # Arithmetic, no commands.
            end = t.index('))', self.pos) + 2
            inner = t[self.pos:end]
            self.pos = end
            self.line += inner.count('\n')
            return inner
        while self.pos < len(t):
            c = t[self.pos]
            if quote:
                if c == quote:
                    quote = None
            elif c in '"\'':
                quote = c
            elif c == '(':
                depth += 1
            elif c == ')':
                depth -= 1
                if depth == 0:
                    break
            self.pos += 1
        inner = t[start + 1:self.pos]
        self.pos += 1
        _Lexer(inner, self.out, self.line).run()
        self.line += inner.count('\n')
        return '(' + inner + ')'


def programs(words):
    """The programs one simple command runs (normally one)."""
    found = []
    skipping = False
    i = 0
    while i < len(words):
        word = words[i]
        i += 1
        if skipping:
            continue
        if ASSIGNMENT.match(word):
            continue
        if word in ('for', 'case', 'select'):
            return found
        if word in SHELL_KEYWORDS:
            continue
        if word == 'chroot':
            # chroot [OPTION] NEWROOT [COMMAND...]
            found.append(word)
            while i < len(words) and words[i].startswith('-'):
                i += 1
            i += 1
            continue
        if word in SHELL_PREFIXES:
            if word not in SHELL_BUILTINS and word not in SHELL_KEYWORDS:
                found.append(word)
            while i < len(words) and (words[i].startswith('-') or
                                      ASSIGNMENT.match(words[i])):
                i += 1
            continue
        if word in SHELL_BUILTINS:
            if word == 'command' and i < len(words) and words[i] == '-v':
                found += words[i + 1:]
            return found
        found.append(word)
        skipping = True
    return found


def _shell_item(word):
    venv = re.match(r'^(\$\{?\w+\}?|\.?[\w.-]+)/bin/([\w.-]+)$', word)
    if venv and (word.startswith('$') or word.startswith('.venv')):
        return 'venv:' + venv.group(2)
    if word.startswith('$'):
        return '?' + word
    if '/' in word and not word.startswith('/'):
        return 'script:' + word
    return word


def scan(text, rel):
    """{(program, where)} of one shell script."""
    functions = set(re.findall(r'^\s*(?:function\s+)?([\w-]+)\s*\(\)',
                               text, re.M))
    uses = set()
    for line, words in commands(text):
        for word in programs(words):
            if word not in functions:
                uses.add((_shell_item(word), '%s:%d' % (rel, line)))
    return uses


def installs(text):
    """Debian packages a script installs.

    Its PACKAGES array and the literal arguments of its ``apt-get
    install`` commands.
    """
    packages = set()
    for _, words in commands(text):
        for word in words:
            array = re.match(r'^PACKAGES\+?=\((.*)\)$', word, re.S)
            if array:
                packages.update(array.group(1).split())
        if words[:1] == ['apt-get'] and 'install' in words:
            for word in words[words.index('install') + 1:]:
                if re.match(r'^[a-z0-9][a-z0-9+.-]+$', word):
                    packages.add(word)
    return packages
