// Tells whether the client of an HTTP request is still connected while its handler waits for the engine.
// cpp-httplib 0.11 (Debian 12) gives a handler no socket and no is_connection_closed(), so the probe finds
// the connection's socket by the request's address pair (local and remote address and port, unique among
// open TCP sockets) among the process's descriptors, once, and then peeks at it without consuming bytes.
// A peer that closed its side (or reset) counts as gone, as uvicorn treats it; pipelined bytes do not.
#pragma once

#include <string>

namespace adallm::server {

class ConnectionProbe {
 public:
  // Looks the socket up now (the handler's thread owns the connection until it returns).
  ConnectionProbe(const std::string& local_addr, int local_port, const std::string& remote_addr, int remote_port);

  bool found() const { return fd_ >= 0; }
  // True once the peer closed or reset the connection; false while it is open (or the socket was not found).
  bool closed() const;

 private:
  int fd_ = -1;
};

}  // namespace adallm::server
