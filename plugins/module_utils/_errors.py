# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The errors that end a task before or around its requests, with a message for the user.

Private to the monoz.link collection: not a public API, it may change without notice.

The task runner catches ``TaskError`` in one place and fails the task with its
message; anything raised as one must already name the option or file at fault
and must never hold the API key.
"""

from __future__ import annotations


class TaskError(Exception):
    """A failure of the whole task whose message is fit to show as it is."""


class InputError(TaskError, ValueError):
    """Input that must not reach the API; the message names the option."""
