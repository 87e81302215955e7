"""Built-in taggers ``AppTagger`` and ``JobClassTagger`` (`cc_core.taggers`), upstream's two taggers."""

from __future__ import annotations

from cc_core.hookspecs import Register, hookimpl


@hookimpl
def register_taggers(register: Register) -> None:
    from cc_core.taggers.apps import AppTagger
    from cc_core.taggers.jobclass import JobClassTagger

    register(AppTagger)
    register(JobClassTagger)
