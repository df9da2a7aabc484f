#ifndef CZeroMQ_SHIM_H
#define CZeroMQ_SHIM_H
#include <zmq.h>

/// ZMQ_ZAP_ENFORCE_DOMAIN sits in zmq.h's draft block in libzmq 4.3, so Swift cannot see it;
/// Debian's library accepts it. Without it a CURVE server whose ZAP handler is missing accepts
/// any key (see DESIGN.md, Transport).
static const int CZeroMQ_ZAP_ENFORCE_DOMAIN = 93;
#endif
