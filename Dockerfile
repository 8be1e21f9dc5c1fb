# wt-sync service image: a build stage with dev dependencies, a runtime stage with production dependencies only.
# No Docker engine runs in CI: test/container/dockerfile.test.ts replays these steps (COPY, RUN, ENV, USER, CMD)
# in a temporary copy of the repository and starts the result. Keep both in step; the test reads this file.
FROM node:20-bookworm-slim AS build
WORKDIR /app
# better-sqlite3 (and ssh2's optional cpu-features) build from source.
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci
COPY tsconfig.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim AS runtime
# HTTP listens on every interface inside the container; docker-compose.yml publishes it on the host's loopback only.
ENV NODE_ENV=production WT_SYNC_HTTP_HOST=0.0.0.0
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY examples ./examples
COPY config/wt-sync.yaml ./config/wt-sync.yaml
# data/ (database, tenant folders), keys/ (host key) and config/ (service and tenant files) are volumes, owned by
# the unprivileged `node` user (uid 1000) the service runs as. A new named volume starts with the image's content.
RUN mkdir -p /app/config/tenants /app/keys /app/data && chown -R node:node /app/config /app/keys /app/data
USER node
VOLUME ["/app/data", "/app/keys", "/app/config"]
EXPOSE 2222 8080
# Exec form: node is PID 1 and gets docker stop's SIGTERM itself (it finishes uploads and runs, then exits 0).
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.WT_SYNC_HTTP_PORT||8080)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
CMD ["node", "--max-semi-space-size=16", "dist/cli.js", "serve"]
