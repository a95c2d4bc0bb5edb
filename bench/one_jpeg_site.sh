# Sourced by scale.sh, long_list.sh and long_gallery.sh: nginx on 127.0.0.1:$PORT serving
# $WORK/site, where every /img/ name answers with $WORK/site/one.jpg and robots.txt is a
# 404. $1: more nginx `location` blocks (long_gallery.sh's listing pages). Sets NGX (the
# server's pid) for the caller's trap, and waits until it listens.
start_one_jpeg_site() {
  cat > "$WORK/nginx.conf" <<NGX
worker_processes 1; daemon off; pid $WORK/nginx.pid; error_log $WORK/nginx.err warn;
events { worker_connections 4096; }
http { access_log off; sendfile on; tcp_nodelay on; keepalive_requests 1000000;
  types { image/jpeg jpg; text/html html; } default_type application/octet-stream;
  server { listen 127.0.0.1:$PORT backlog=4096; root $WORK/site;
    location = /robots.txt { return 404; }
    ${1:-}
    location /img/ { try_files /one.jpg =404; } } }
NGX
  nginx -p "$WORK" -c "$WORK/nginx.conf" & NGX=$!
  for _ in $(seq 50); do
    curl -s -o /dev/null "http://127.0.0.1:$PORT/robots.txt" && return 0
    sleep 0.1
  done
  echo "nginx did not start on 127.0.0.1:$PORT (see $WORK/nginx.err)" >&2
  return 1
}
