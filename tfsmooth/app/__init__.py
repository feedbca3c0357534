"""The application: the command line and everything a run of it writes.

Flags and run configurations (``config``, ``flags``), the run directory (``rundir``), one training
run (``train``, built by ``build``), its SavedModels (``export``), TensorBoard figures and text
(``summaries``), the modes of ``python -m tfsmooth.main`` (``main``: ``report``, ``evaluate``,
``nk_toy``) and the console. It sits on the library (every other module of ``tfsmooth`` but
``tfsmooth.experiments``), which never imports it (tests/test_layout.py).
"""
