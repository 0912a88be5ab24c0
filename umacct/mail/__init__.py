"""Outgoing mail: bilingual templates (``compose``), transports, the queue and the mailer.

Import from the modules themselves: reading the queue (``show``, ``mail list``) then loads
neither the composition nor the SMTP machinery.
"""
