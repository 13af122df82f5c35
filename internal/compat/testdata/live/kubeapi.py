# Answers calicoctl ipam check's only Kubernetes request (list Services)
# with an empty list: there is no Kubernetes here.
import http.server, json
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"kind": "ServiceList", "apiVersion": "v1", "metadata": {}, "items": []}).encode()
        self.send_response(200 if self.path.startswith("/api/v1/services") else 404)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        open("/tmp/h7live/kubeapi.log", "a").write(self.path + "\n")
http.server.HTTPServer(("127.0.0.1", 23799), H).serve_forever()
