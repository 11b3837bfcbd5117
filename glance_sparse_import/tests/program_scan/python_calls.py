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

"""Programs that Python code runs, read with ``ast``.

Calls of subprocess, os.exec*/system, oslo.concurrency's processutils and
shutil.which count, and so do calls of every function of the tree that
hands one of its parameters to those (``procs.run``, ``disk_images.run``,
``Cluster._run``, ...), found by iterating to a fixed point. A command's
program is followed through literals, ``+``, local and module assignments,
``self.x`` assignments and the return values of functions of the same
module, and past ``--`` when the interpreter runs a wrapper such as
oslo.concurrency's prlimit.
"""

import ast
import collections
import os

# A command is the whole argv (LIST), the positional arguments (ARGS), the
# program alone (PROGRAM) or a shell command line (SHELL). A LOOKUP names a
# program without running it: one that cannot be followed is no failure.
LIST, ARGS, PROGRAM, SHELL = 'list', 'args', 'program', 'shell'
LOOKUP = 'lookup'

BASE_RUNNERS = {
    ('subprocess', 'run'): LIST,
    ('subprocess', 'Popen'): LIST,
    ('subprocess', 'call'): LIST,
    ('subprocess', 'check_call'): LIST,
    ('subprocess', 'check_output'): LIST,
    ('subprocess', 'getoutput'): SHELL,
    ('subprocess', 'getstatusoutput'): SHELL,
    ('os', 'system'): SHELL,
    ('os', 'popen'): SHELL,
    ('os', 'execv'): PROGRAM,
    ('os', 'execve'): PROGRAM,
    ('os', 'execvp'): PROGRAM,
    ('os', 'execvpe'): PROGRAM,
    ('os', 'execl'): PROGRAM,
    ('os', 'execle'): PROGRAM,
    ('os', 'execlp'): PROGRAM,
    ('os', 'execlpe'): PROGRAM,
    ('os', 'posix_spawn'): PROGRAM,
    ('os', 'posix_spawnp'): PROGRAM,
    ('pty', 'spawn'): LIST,
    ('asyncio', 'create_subprocess_exec'): ARGS,
    ('asyncio', 'create_subprocess_shell'): SHELL,
    ('oslo_concurrency.processutils', 'execute'): ARGS,
    ('oslo_concurrency.processutils', 'trycmd'): ARGS,
    ('shutil', 'which'): LOOKUP,
}

# Names that hold the Python interpreter (oslo.concurrency's python_exec).
INTERPRETER_NAMES = frozenset(['python_exec', '_python_exec'])


class _Module(object):

    def __init__(self, rel, tree):
        self.rel = rel
        self.name = os.path.splitext(rel)[0].replace(os.sep, '.')
        self.tree = tree
        self.aliases = {}      # local name -> module
        self.imported = {}     # local name -> (module, name)
        self.functions = collections.defaultdict(list)
        self.self_assigns = collections.defaultdict(list)
        self.module_assigns = collections.defaultdict(list)
        self.parents = {}
        for node in ast.walk(tree):
            for child in ast.iter_child_nodes(node):
                self.parents[child] = node
            if isinstance(node, ast.Import):
                for a in node.names:
                    self.aliases[a.asname or a.name.split('.')[0]] = (
                        a.name if a.asname else a.name.split('.')[0])
            elif isinstance(node, ast.ImportFrom) and node.module:
                for a in node.names:
                    local = a.asname or a.name
                    self.aliases[local] = '%s.%s' % (node.module, a.name)
                    self.imported[local] = (node.module, a.name)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self.functions[node.name].append(node)
            elif isinstance(node, ast.Assign):
                for target in node.targets:
                    if (isinstance(target, ast.Attribute) and
                            isinstance(target.value, ast.Name) and
                            target.value.id == 'self'):
                        self.self_assigns[target.attr].append(node.value)
        for node in tree.body:
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        self.module_assigns[target.id].append(node.value)

    def where(self, node):
        return '%s:%d' % (self.rel, node.lineno)

    def functions_of(self, node):
        """Enclosing function definitions, innermost first."""
        found = []
        while node in self.parents:
            node = self.parents[node]
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                found.append(node)
        return found

    def callee(self, call):
        """(module, name) the call refers to, or None."""
        func = call.func
        if isinstance(func, ast.Name):
            if func.id in self.imported:
                return self.imported[func.id]
            return (self.name, func.id)
        if isinstance(func, ast.Attribute) and isinstance(func.value,
                                                          ast.Name):
            owner = func.value.id
            if owner in ('self', 'cls'):
                return (self.name, func.attr)
            if owner in self.aliases:
                return (self.aliases[owner], func.attr)
        return None


def _positional(func):
    params = [a.arg for a in func.args.posonlyargs + func.args.args]
    if params and params[0] in ('self', 'cls'):
        params = params[1:]
    return params


class _Resolver(object):
    """Follow a command expression to the programs it names."""

    def __init__(self, module, node, runners):
        self.module = module
        self.runners = runners
        self.scopes = module.functions_of(node)
        self.seen = set()

    def _param(self, name):
        for func in self.scopes:
            if name in _positional(func):
                return ('param', name, func)
            if func.args.vararg and func.args.vararg.arg == name:
                return ('vararg', name, func)
            if name in [a.arg for a in func.args.kwonlyargs]:
                return ('unknown', 'keyword-only parameter ' + name)
        return None

    def _assigned(self, name):
        for func in self.scopes:
            values = [n.value for n in ast.walk(func)
                      if isinstance(n, ast.Assign) and
                      any(isinstance(t, ast.Name) and t.id == name
                          for t in n.targets)]
            if values:
                return values
        return self.module.module_assigns.get(name, [])

    def _returns(self, call):
        callee = self.module.callee(call)
        if callee is None or callee[0] != self.module.name:
            return None
        funcs = self.module.functions.get(callee[1])
        if not funcs:
            return None
        return [n.value for f in funcs for n in ast.walk(f)
                if isinstance(n, ast.Return) and n.value is not None]

    def _guard(self, node):
        if node in self.seen:
            return False
        self.seen.add(node)
        return True

    def argv(self, node):
        """Items for a whole command line (a list of words)."""
        if not self._guard(node):
            return []
        if isinstance(node, (ast.List, ast.Tuple)):
            return self.words(list(node.elts))
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            parts = []
            stack = [node]
            while stack:
                n = stack.pop()
                if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Add):
                    stack += [n.right, n.left]
                else:
                    parts.append(n)
            first = self.argv(parts[0])
            if any(i[0] == 'python' for i in first):
                for part in parts[1:]:
                    if isinstance(part, (ast.List, ast.Tuple)):
                        first += self._after_dashes(part.elts)
            return first
        if isinstance(node, ast.Starred):
            return self.argv(node.value)
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return self.program(ast.Constant(node.value.split()[0]
                                             if node.value.split() else ''))
        if isinstance(node, ast.IfExp):
            return self.argv(node.body) + self.argv(node.orelse)
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Name) and node.func.id in (
                    'list', 'tuple') and node.args:
                return self.argv(node.args[0])
            values = self._returns(node)
            if values is not None:
                return [i for v in values for i in self.argv(v)]
        return self._through_names(node, self.argv)

    def words(self, elts):
        """Items for argv given as separate word expressions."""
        if not elts:
            return [('unknown', '[]')]
        if isinstance(elts[0], ast.Starred):
            return self.argv(elts[0].value)
        items = self.program(elts[0])
        if any(i[0] == 'python' for i in items):
            items += self._after_dashes(elts[1:])
        return items

    def _after_dashes(self, elts):
        # python -m oslo_concurrency.prlimit ... -- PROGRAM ...
        for i, elt in enumerate(elts[:-1]):
            if isinstance(elt, ast.Constant) and elt.value == '--':
                return self.program(elts[i + 1])
        return []

    def program(self, node):
        """Items for one expression that is the program itself."""
        if not self._guard(node):
            return []
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return [_program_item(node.value)]
        if _names_interpreter(node):
            return [('python',)]
        if isinstance(node, ast.BoolOp):
            return [i for v in node.values for i in self.program(v)]
        if isinstance(node, ast.IfExp):
            return self.program(node.body) + self.program(node.orelse)
        if isinstance(node, ast.Call):
            name = _call_name(node)
            if name == 'bin_path' and node.args and isinstance(
                    node.args[0], ast.Constant):
                return [('venv', node.args[0].value)]
            lookup = self.runners.get(self.module.callee(node))
            if lookup and lookup[0] == LOOKUP and node.args:
                # which(), programs.require(): the path of their argument.
                return self.program(node.args[lookup[1]])
            values = self._returns(node)
            if values is not None:
                return [i for v in values for i in self.program(v)]
        return self._through_names(node, self.program)

    def _through_names(self, node, resolve):
        """Items of what a name or ``self.attr`` holds, by ``resolve``."""
        values = None
        if isinstance(node, ast.Name):
            param = self._param(node.id)
            if param:
                return [param]
            values = self._assigned(node.id)
        elif isinstance(node, ast.Attribute) and _is_self(node):
            values = self.module.self_assigns.get(node.attr)
        if values:
            return [i for v in values for i in resolve(v)]
        return [('unknown', ast.unparse(node))]


def _is_self(node):
    return isinstance(node.value, ast.Name) and node.value.id == 'self'


def _call_name(call):
    func = call.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _names_interpreter(node):
    if isinstance(node, ast.Attribute):
        if (isinstance(node.value, ast.Name) and node.value.id == 'sys' and
                node.attr == 'executable'):
            return True
        return node.attr in INTERPRETER_NAMES
    return isinstance(node, ast.Name) and node.id in INTERPRETER_NAMES


def _program_item(word):
    if '/' in word and not word.startswith('/'):
        return ('script', word)
    return ('program', word)


def _command_node(call, runner):
    """The expression(s) of ``call`` that hold the command."""
    style, index, name = runner
    if style == ARGS:
        return call.args[index:] or None
    if len(call.args) > index and not any(
            isinstance(a, ast.Starred) for a in call.args[:index + 1]):
        return call.args[index]
    for kw in call.keywords:
        if kw.arg in (name, 'args'):
            return kw.value
    return None


def _items(resolver, call, runner):
    node = _command_node(call, runner)
    if node is None:
        return [('unknown', ast.unparse(call))]
    if runner[0] == ARGS:
        return resolver.words(list(node))
    if runner[0] == LOOKUP:
        return [i for i in resolver.program(node) if i[0] != 'unknown']
    if runner[0] == PROGRAM:
        return resolver.program(node)
    return resolver.argv(node)


def scan(files):
    """{(program, where)} for [(relative path, source text)]."""
    modules = [_Module(rel, ast.parse(text, rel)) for rel, text in files]
    runners = {k: (v, 0, None) for k, v in BASE_RUNNERS.items()}
    while True:
        found = {}
        uses = set()
        for module in modules:
            for call in ast.walk(module.tree):
                if not isinstance(call, ast.Call):
                    continue
                runner = runners.get(module.callee(call))
                if runner is None:
                    continue
                resolver = _Resolver(module, call, runners)
                for item in _items(resolver, call, runner):
                    if item[0] in ('param', 'vararg'):
                        found.update(_wrapper(module, item, runner[0]))
                    else:
                        uses.add(_use(item, module.where(call)))
        new = {k: v for k, v in found.items() if k not in runners}
        if not new:
            return uses
        runners.update(new)


def _wrapper(module, item, style):
    """{(module, function): runner}: a function that runs its parameter."""
    kind, name, func = item
    key = (module.name, func.name)
    index = len(_positional(func))
    if kind == 'vararg':
        return {key: (ARGS if style == LIST else style, index, name)}
    return {key: (style, _positional(func).index(name), name)}


def _use(item, where):
    kind = item[0]
    if kind == 'program':
        return (item[1], where)
    if kind == 'python':
        return ('python', where)
    if kind in ('venv', 'script'):
        return ('%s:%s' % (kind, item[1]), where)
    return ('?' + str(item[1]), where)
