"""API verbs that share a name with a subpackage (train, export, bench, report).

Importing a submodule such as `edgemed.train.loop` binds `edgemed.train` to the package, which
would hide the verb `edgemed.train(...)`. Making the package callable keeps both working."""

from __future__ import annotations

import importlib
import sys
import types


def callable_package(package: str, target: str) -> None:
    """Let `package(...)` call `target` ("module:function"), imported on first call."""
    module_name, _, func = target.partition(":")

    class VerbPackage(types.ModuleType):
        def __call__(self, *args, **kwargs):
            return getattr(importlib.import_module(module_name), func)(*args, **kwargs)

    sys.modules[package].__class__ = VerbPackage
