"""The prompt_toolkit full-screen UI of chat-client.

* :mod:`client.ui.render` - pure rendering: lines to styled fragments, word wrapping,
  nick colours, the style sheet (no prompt_toolkit application state).
* :mod:`client.ui.views` - the UI controls: message pane (renders only the visible
  rows), buffer list, nick list, topic bar, status line, and per-buffer scroll state.
* :mod:`client.ui.keys` - key bindings, configurable by action name.
* :mod:`client.ui.app` - :class:`~client.ui.app.ChatUI` (layout, input line, history,
  completion, event handling) and :func:`~client.ui.app.run`, called by ``cli.py``.
"""
