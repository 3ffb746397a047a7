// The incremental byte matcher of a Grammar: a nondeterministic pushdown automaton whose parse stacks are
// hash-consed lists (a node is a position in Grammar::code and the node to return to), so a state is a
// short sorted list of node ids, forking on anyOf costs one more id, and equal states compare equal.
// States are numbered as they are met and each (state, byte) transition is computed once, so the token
// mask walk (structured/token_mask.h) becomes table lookups once the states around a position are known:
// a lazily built DFA over the pushdown automaton's reachable configurations.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <memory>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "structured/grammar.h"

namespace adallm::structured {

// Where the matcher may be: the stacks whose top is a byte terminal, and whether the bytes so far are a
// whole document.
struct MatchState {
  std::vector<int32_t> heads;  // sorted node ids
  bool complete = false;
  bool dead() const { return heads.empty() && !complete; }
  bool operator==(const MatchState&) const = default;
};

class Matcher {
 public:
  static constexpr int32_t kDead = -1;

  explicit Matcher(std::shared_ptr<const Grammar> grammar);

  // Consumes `bytes` if the grammar allows all of them from here; otherwise returns false and stays put.
  bool advance(std::string_view bytes);
  // The bytes so far form a document of the grammar.
  bool complete() const { return states_[static_cast<size_t>(current_)].complete; }
  // Some byte may still follow.
  bool can_continue() const { return !states_[static_cast<size_t>(current_)].heads.empty(); }

  // State ids: the current one, and the one after `byte` / `bytes` from state `from` (kDead if refused).
  int32_t current() const { return current_; }
  int32_t next(int32_t from, uint8_t byte);
  int32_t walk(int32_t from, std::string_view bytes);
  bool complete(int32_t state) const { return states_[static_cast<size_t>(state)].complete; }
  size_t num_states() const { return states_.size(); }

 private:
  struct Node {
    int32_t pos, parent;  // parent: the node that continues when the alternative at pos ends; -1 at the root
  };
  struct StateHash {
    size_t operator()(const MatchState& s) const;
  };
  static constexpr int32_t kUnknown = -2;

  int32_t intern(int32_t pos, int32_t parent);
  int32_t intern_state(MatchState&& state);
  // Expands the nodes on work_ (rules into their alternatives, ends into their parents) into `out`.
  void close(MatchState& out);

  std::shared_ptr<const Grammar> g_;
  std::vector<Node> nodes_;
  std::unordered_map<uint64_t, int32_t> index_;
  std::vector<uint32_t> seen_;  // node → the close() call that last reached it
  uint32_t stamp_ = 0;
  std::vector<int32_t> work_;
  std::deque<MatchState> states_;  // a deque: references stay valid while states are added
  std::unordered_map<MatchState, int32_t, StateHash> state_index_;
  std::vector<std::array<int32_t, 256>> transitions_;  // state → byte → state, kDead or kUnknown
  int32_t current_ = 0;
};

}  // namespace adallm::structured
