# wt-sync service image. Keep in step with `npm ci && npm run build` (see README.md).
FROM node:20-bookworm-slim AS build
WORKDIR /app
# better-sqlite3 and ssh2's optional cpu-features build from source.
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci
COPY tsconfig.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY examples ./examples
# Config is mounted at /app/config; keys and data are volumes (generated on first start, never in the image).
RUN mkdir -p /app/config/tenants /app/keys /app/data && chown -R node:node /app/config /app/keys /app/data
USER node
VOLUME ["/app/keys", "/app/data"]
EXPOSE 2222 8080
# HTTP listens on 127.0.0.1 by default; set WT_SYNC_HTTP_HOST=0.0.0.0 (as docker-compose.yml does) to publish it.
HEALTHCHECK --interval=30s --timeout=3s CMD node -e "fetch('http://127.0.0.1:8080/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
CMD ["node", "--max-semi-space-size=32", "dist/cli.js", "serve"]
