# The same binary as `go build ./cmd/caddy` (Caddy with its standard modules
# and caddy-idv's), in a small image. Build and run the default
# configuration (the demo with the offline sandbox):
#
#	docker build -t caddy-idv .
#	docker run --rm -p 8080:8080 caddy-idv
#
# For a real provider, give the variables of .env.example:
#
#	docker run --rm -p 8080:8080 --env-file .env caddy-idv
#
# or mount your own Caddyfile at /srv/Caddyfile. Caddy keeps its state
# (sessions, autosaved config) under /home/nonroot: mount a volume there, or
# use shared storage (docs/operations.md), to keep sessions across restarts.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/caddy ./cmd/caddy \
	&& /out/caddy list-modules | grep -qx http.handlers.idv

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/caddy /usr/bin/caddy
WORKDIR /srv
# The root Caddyfile imports examples/log-filters.caddy and serves
# examples/demo, both relative to it and to the working directory.
COPY Caddyfile /srv/Caddyfile
COPY examples/log-filters.caddy /srv/examples/log-filters.caddy
COPY examples/demo /srv/examples/demo
EXPOSE 8080
ENTRYPOINT ["/usr/bin/caddy"]
CMD ["run", "--config", "/srv/Caddyfile", "--adapter", "caddyfile"]
