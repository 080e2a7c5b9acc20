// Z85 against the specification's example and against libzmq's own encoder.
#include "common/z85.h"

#include <gtest/gtest.h>
#include <zmq.h>

#include <random>

namespace manifold {
namespace {

TEST(Z85, SpecificationExample) {
  const std::string bytes("\x86\x4F\xD2\x6F\xB5\x59\xF7\x5B", 8);  // ZeroMQ RFC 32
  EXPECT_EQ(Z85Encode(bytes), "HelloWorld");
  EXPECT_EQ(Z85Decode("HelloWorld"), bytes);
  EXPECT_EQ(Z85Encode(""), "");
  EXPECT_EQ(Z85Decode(""), std::string());
}

TEST(Z85, AgreesWithLibzmqOnRandomKeys) {
  std::mt19937 random(7);
  for (int i = 0; i < 200; ++i) {
    std::string bytes(32, '\0');
    for (char& c : bytes) c = static_cast<char>(random());
    char text[41] = {};
    ASSERT_NE(zmq_z85_encode(text, reinterpret_cast<const uint8_t*>(bytes.data()), 32), nullptr);
    EXPECT_EQ(Z85Encode(bytes), text);
    EXPECT_EQ(Z85Decode(text), bytes);
  }
  EXPECT_EQ(Z85Encode(std::string(4, '\xff')), "%nSc0");  // the largest group
  EXPECT_EQ(Z85Decode("%nSc0"), std::string(4, '\xff'));
}

TEST(Z85, RefusesWhatIsNotZ85) {
  EXPECT_EQ(Z85Decode("Hello"), std::string("\x86\x4F\xD2\x6F", 4));
  EXPECT_FALSE(Z85Decode("Hell"));    // not a multiple of five
  EXPECT_FALSE(Z85Decode("Hell\""));  // '"' is not in the alphabet
  EXPECT_FALSE(Z85Decode("Hell o"));  // nor is a space
  EXPECT_FALSE(Z85Decode("%nSc1"));   // 2^32: does not fit in four bytes
  EXPECT_FALSE(Z85Decode("#####"));   // the largest five characters
  EXPECT_FALSE(Z85Decode(std::string("Hell\0", 5)));
}

}  // namespace
}  // namespace manifold
