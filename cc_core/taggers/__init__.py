"""Automatic job tagging (upstream ``internal/tagger``, contract §9).

* `cc_core.taggers.apps` — ``AppTagger``: application tags from the job script (event ``start``);
* `cc_core.taggers.jobclass` — ``JobClassTagger``: job classes from archived statistics (event ``stop``);
* `cc_core.taggers.expr` / `cc_core.taggers.gotemplate` — the rule languages (expr-lang subset, Go
  template subset), evaluated without Python's ``eval``;
* `cc_core.taggers.rules` — built-in rule files (``rules/``, from upstream's ``configs/tagger``) plus a
  site's ``var/tagger/{apps,jobclasses}``, reloaded when they change;
* `cc_core.taggers.service` — runs taggers on job events, for ``apply-tags`` and the admin UI, and
  writes their tags and messages.

Both taggers are registered by `cc_core.builtins.taggers` through the ``register_taggers`` hook, the
door every third-party tagger uses too.
"""
