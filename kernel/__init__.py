"""The kernel every app builds on: errors in the OpenAI shape, per-process caches, the request id
(its context variable, middleware and log lines). It imports no Solaris app."""
