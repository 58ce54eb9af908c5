# chat-server image: `docker build -t chat .` then `docker run -p 6667:6667 chat`
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

# An unprivileged account to run the server. Its home is the working directory, where
# the default SQLite history (chat.db) and ban file (bans.json) go; /data is for a volume
# (--db /data/chat.db --ban-file /data/bans.json),
# owned by the account so that a fresh named volume is writable too.
RUN groupadd --gid 10001 chat \
    && useradd --uid 10001 --gid 10001 --create-home --no-log-init --shell /usr/sbin/nologin chat \
    && mkdir -p /data \
    && chown 10001:10001 /data

WORKDIR /src
COPY . .
# Same install step as scripts/serve: the package and its runtime dependencies only.
RUN python -m pip install --quiet .

USER 10001:10001
WORKDIR /home/chat
EXPOSE 6667
# The probe PINGs the IRC port (defaults: 127.0.0.1:6667, or CHAT_PORT).
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["chat-server", "--check"]
ENTRYPOINT ["chat-server"]
CMD ["--host", "0.0.0.0", "--port", "6667"]
