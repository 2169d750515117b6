#include "weir/runtime/shared_bytes.hpp"

#include <ostream>

namespace weir {

shared_bytes::shared_bytes(std::string text) {
  if (text.empty()) return;
  auto owned = std::make_shared<const std::string>(std::move(text));
  view_ = *owned;
  owner_ = std::move(owned);
}

std::ostream& operator<<(std::ostream& out, const shared_bytes& bytes) {
  return out << bytes.view();
}

}  // namespace weir
