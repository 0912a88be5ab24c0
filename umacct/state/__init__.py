"""The tool's durable state kept in the directory, beside the accounts it is about.

``DirectoryStore`` implements ``umacct.store.Store`` under a branch of the directory
(``[directory] state_dn``), with the standard object classes only (core schema), so that
several hosts share one state and a lost host loses nothing that matters (docs/state.md).
"""
