FROM node:20-bookworm
RUN apt-get update && apt-get install -y --no-install-recommends lxc rsync openssh-client iputils-arping iproute2 acl attr criu util-linux && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/ferry
COPY . .
RUN npm ci --no-audit --no-fund && npm run build
ENTRYPOINT []
