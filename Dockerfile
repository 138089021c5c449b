# Switchboard hub node. Three stages:
#   build    every dependency (lock file exact, `npm ci`), then `npm run build` -> dist/
#   deps     production dependencies only, no install scripts (nothing to build there)
#   runtime  package.json, those node_modules and dist/: compiled JavaScript, no
#            compiler, no tsx, no esbuild. Files stay root-owned; the process runs as
#            the unprivileged `node` user and cannot rewrite its own code.
FROM node:20-alpine AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY . .
RUN npm run build

FROM node:20-alpine AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund --ignore-scripts

FROM node:20-alpine AS runtime
ENV NODE_ENV=production PORT=8080 HOST=0.0.0.0
WORKDIR /app
COPY package.json ./
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
USER node
EXPOSE 8080
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=3 \
  CMD wget -qO- "http://127.0.0.1:${PORT}/readyz" >/dev/null || exit 1
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "dist/src/cli.js"]
CMD ["serve"]
