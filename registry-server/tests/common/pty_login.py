"""Runs `npm login` (or any prompting command) in a pseudo-terminal and answers its prompts.

Usage: pty_login.py USER PASSWORD -- COMMAND [ARGS...]
npm reads credentials only from a terminal, so tests that log in with the real CLI go through here.
Exits with the command's exit code and echoes what it printed.
"""
import os
import pty
import select
import sys
import time

user, password, sep, *cmd = sys.argv[1:]
assert sep == "--" and cmd, __doc__
answers = [(b"sername:", user), (b"assword:", password), (b"mail", "test@example.com")]

pid, fd = pty.fork()
if pid == 0:
    os.execvp(cmd[0], cmd)

seen = b""
deadline = time.time() + 60
while time.time() < deadline:
    ready, _, _ = select.select([fd], [], [], 0.5)
    if not ready:
        continue
    try:
        chunk = os.read(fd, 4096)
    except OSError:
        break
    if not chunk:
        break
    seen += chunk
    for prompt, answer in list(answers):
        if prompt in seen:
            os.write(fd, answer.encode() + b"\r")
            answers.remove((prompt, answer))
            seen = seen.split(prompt, 1)[1]

else:
    # Still running at the deadline (e.g. waiting for a browser): fail instead of hanging.
    os.kill(pid, 9)
    seen += b"\n[pty_login.py: killed after 60 s]"

_, status = os.waitpid(pid, 0)
sys.stdout.write(seen.decode(errors="replace"))
sys.exit(os.waitstatus_to_exitcode(status))
